/* alloc.h: every allocation of the engine goes through here, so the module
 * can report its own memory apart from the host's heap, and tests can make
 * allocations fail. Any thread. */
#ifndef SLUICE_ALLOC_H
#define SLUICE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *net__malloc(size_t n);
void *net__calloc(size_t n, size_t size);
void *net__realloc(void *p, size_t n);
char *net__strdup(const char *s);
void net__free(void *p);
/* Zeroes n bytes that held a secret, however soon they go. */
void net__wipe(void *p, size_t n);
/* Frees n bytes that held a secret (a key's password), wiped first. */
void net__free_secret(void *p, size_t n);
/* The same for a C string (a password, a URL with credentials); NULL is fine. */
void net__free_secret_str(char *s);
/* Cache-line aligned (connection objects); freed with net__free_aligned. */
void *net__aligned(size_t n);
void net__free_aligned(void *p);

/* After a burst of frees (see alloc.c) the heap's free pages go back to
 * the system: fn is called, on the freeing thread, when a burst of big
 * blocks (or of chunks: pages.c) has come; due says whether one has (NOW),
 * or the calling thread freed a burst of small ones since the heap was last
 * walked (QUIET: worth a walk once the engine is quiet); release_heap, as a
 * release starts, says whether it walks the heap: a burst of big blocks,
 * or of small ones with the engine quiet (the small count then starts
 * again); release walks it when heap is set or big blocks came since (a
 * walk of milliseconds: the engine runs it on a helper thread). */
typedef enum { NET_MEM_DUE_NONE, NET_MEM_DUE_QUIET, NET_MEM_DUE_NOW } net_mem_due;
#define NET_MEM_BURST ((size_t)4 << 20)   /* 256 chunks: a release costs less than it returns */
void net__mem_on_burst(void (*fn)(void));
net_mem_due net__mem_release_due(void);
bool net__mem_release_heap(bool quiet);
void net__mem_release(bool heap);
/* The ring chunks' own pages (pages.c): get gives NET_CHUNK_SIZE bytes
 * (NULL: out of memory), put takes only what get gave; release gives the
 * pages of those put back to the system, holding no lock another thread
 * takes (the trim's thread; returns the bytes), dirty says how many wait
 * for it. own_pages: false where chunks are malloc's (ASan, 32-bit, a
 * system that would not reserve the range). */
void *net__chunk_get(void);
void net__chunk_put(void *p);
size_t net__chunk_release(void);
size_t net__chunk_dirty(void);
bool net__chunk_own_pages(void);
/* Runs (pages.c): n bytes (a multiple of NET_CHUNK_SIZE) in one piece, for
 * a ring's chunks side by side; NULL without own pages or memory for it.
 * put takes only what run_get gave; net__chunk_release gives a freed run's
 * pages back, and net__chunk_dirty counts them until then. */
void *net__run_get(size_t n);
void net__run_put(void *p);
size_t net__run_bytes(void);   /* of the runs rings hold now */
/* The dirty stack's head as it stands (tests: a chunk popped and pushed
 * back must not leave it as it was). */
uint64_t net__chunk_dirty_head(void);
/* For pages.c: the test switch's verdict for one allocation, the byte
 * count, and the burst callback. */
bool net__alloc_fails(void);
void net__mem_counted(ptrdiff_t delta);
void net__mem_burst(void);
/* The process's malloc heap in use (net__os_process_heap) as last sampled
 * (0 before the first), and the sample's age (UINT64_MAX: none yet). Any
 * thread. sample_heap takes a new one: the trim's thread only. */
size_t net__mem_process_heap(uint64_t *age_ms);
void net__mem_sample_heap(void);

/* Bytes the engine holds now (blocks as the allocator sized them). */
size_t net__mem_used(void);

#endif
