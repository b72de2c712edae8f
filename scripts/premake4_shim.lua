-- premake4_shim.lua: maps the premake5 calls premake5.lua uses onto Debian's
-- premake 4.3, so that both generate the same Makefiles. premake5.lua loads
-- it only under premake4; keep to these calls (or extend this file) when
-- editing the build.
workspace = solution

-- filter { "configurations:asan or tsan", "system:not linux" }
--   -> configuration { "asan or tsan", "not linux" }
-- Field prefixes are dropped (4.3 matches bare terms: configuration
-- names, os names, the action); "not" may stand before or after the
-- prefix, as in premake5, but only in front of a whole term.
local function split_or(s)
	local t, from = {}, 1
	while true do
		local i, j = s:find(" or ", from, true)
		if not i then
			table.insert(t, s:sub(from))
			return t
		end
		table.insert(t, s:sub(from, i - 1))
		from = j + 1
	end
end

local function translate(term)
	local words, negated = {}, false
	for _, word in ipairs(split_or(term:lower())) do
		word = word:gsub("^%s+", ""):gsub("%s+$", "")
		local neg = false
		while true do
			if word:sub(1, 4) == "not " then
				neg = not neg
				word = word:sub(5)
			elseif word:find(":", 1, true) then
				word = word:sub(word:find(":", 1, true) + 1)
			else
				break
			end
		end
		negated = negated or neg
		table.insert(words, word)
	end
	if negated then
		if #words > 1 then
			error("premake4 shim: 'not' inside an 'or' term is not supported: " .. term)
		end
		return "not " .. words[1]
	end
	return table.concat(words, " or ")
end

function filter(terms)
	if type(terms) == "string" then
		terms = { terms }
	end
	local out = {}
	for _, t in ipairs(terms) do
		table.insert(out, translate(t))
	end
	configuration(out)
end

function symbols(v)
	if v == "On" or v == "Full" or v == "FastLink" then
		flags { "Symbols" }
	end
end

local OPT = { On = "Optimize", Size = "OptimizeSize", Speed = "OptimizeSpeed", Full = "OptimizeSpeed" }
function optimize(v)
	if v == "Debug" then
		buildoptions { "-Og" }
	elseif OPT[v] then
		flags { OPT[v] }
	end -- "Off": 4.3 passes no -O at all, which is gcc's -O0
end

function cdialect(v)
	buildoptions { "-std=" .. v:lower() }
end

function warnings(v)
	if v == "Extra" then
		buildoptions { "-Wall", "-Wextra" }
	elseif v == "High" then
		buildoptions { "-Wall" }
	elseif v == "Off" then
		buildoptions { "-w" }
	end
end

function visibility(v)
	buildoptions { "-fvisibility=" .. v:lower() }
end

function pic(v)
	if v == "On" then
		buildoptions { "-fPIC" }
	end
end

removefiles = excludes

-- premake 4.3's gmake generator writes one object list per project: the
-- project-level file list, ignoring files added or excluded inside
-- configuration blocks. Patch it so that a file used by only some
-- configurations is linked only in those, as premake5 does (needed for
-- the poller backends). Also add order-only dependencies on the output
-- directories, which 4.3 lacks (a race under make -j).
local make_cpp = premake.make_cpp
premake.make_cpp = function(prj)
	local cfgs = {}
	for cfg in premake.eachconfig(prj) do
		table.insert(cfgs, cfg)
	end
	local union, users = {}, {}
	for _, cfg in ipairs(cfgs) do
		for _, f in ipairs(cfg.files) do
			if not users[f] then
				users[f] = {}
				table.insert(union, f)
			end
			table.insert(users[f], cfg.shortname)
		end
	end
	local partial = {} -- escaped object basename -> configs that use it
	local partial_order = {}
	for _, f in ipairs(union) do
		if path.iscppfile(f) and #users[f] < #cfgs then
			local base = _MAKE.esc(path.getbasename(f))
			partial[base] = users[f]
			table.insert(partial_order, base)
		end
	end

	local function var(base)
		return "SLUICE_OBJ_" .. base:gsub("[^%w_]", "_")
	end

	local p = _p
	_p = function(msg, ...)
		if msg == "OBJECTS := \\" then
			for _, base in ipairs(partial_order) do
				p("%s :=", var(base))
				p("ifneq (,$(filter %s,$(config)))", table.concat(partial[base], " "))
				p("  %s := $(OBJDIR)/%s.o", var(base), base)
				p("endif")
			end
			if #partial_order > 0 then
				p("")
			end
		elseif msg == "\t$(OBJDIR)/%s.o \\" and partial[(...)] then
			return p("\t$(%s) \\", var((...)))
		elseif type(msg) == "string" and msg:find("^%$%(TARGET%): ") then
			p("$(OBJECTS) $(RESOURCES): | $(OBJDIR)")
			p("$(TARGET): | $(TARGETDIR)")
			p("")
		end
		return p(msg, ...)
	end

	local files = prj.files
	prj.files = union
	local ok, err = pcall(make_cpp, prj)
	prj.files = files
	_p = p
	if not ok then
		error(err, 0)
	end
end
