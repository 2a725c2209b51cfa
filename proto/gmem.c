/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Guest memory regions. Every field of a region comes from the frontend and
 * is checked before use: sizes and ends must not wrap, ranges must not
 * overlap (a translation must have exactly one answer), a region must lie
 * inside its file, and a translation never returns bytes past the end of
 * the region it found.
 *
 * Memory that vanishes later (the frontend truncates its file, hugetlbfs
 * runs out of pages under MAP_NORESERVE) turns the next access into SIGBUS.
 * Sealing cannot prevent that in general (only memfds created sealable can
 * be sealed, not hugetlbfs or shm files, and a seal would also bind the
 * frontend), so a SIGBUS handler does: a fault inside one of our mappings
 * swaps that mapping for zero-filled anonymous memory, the access is retried
 * and reads zeros, and the region is marked lost; the backend then drops the
 * frontend (gmem_lost). A fault anywhere else, and a SIGBUS sent with kill,
 * goes to the previous handler, or ends the process as the default action
 * would.
 *
 * Sizes cost nothing to ask for (a sparse file of any size maps at once
 * under MAP_NORESERVE), yet address space is finite and shared by every
 * backend of the process: each mapping is charged to the table's budgets
 * before it is made, so one frontend cannot take the room another needs.
 */
#define _GNU_SOURCE
#include "vhost-user/gmem.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Every mapping of every gmem in the process, for the handler: slots are
 * claimed and released with atomics (several backends may run in threads),
 * and a slot is live only while len is non-zero.
 */
#define GMEM_GUARD_SLOTS 1024
struct gmem_guard {
	_Atomic uintptr_t base;
	_Atomic size_t len;
	atomic_bool lost;
};

static struct gmem_guard gmem_guards[GMEM_GUARD_SLOTS];
static atomic_uint gmem_faults;
static struct sigaction gmem_old_bus;
static pthread_mutex_t gmem_guard_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * A fault the kernel raised for an access (BUS_ADRALN, BUS_ADRERR,
 * BUS_OBJERR, BUS_MCEERR_AR) happens again when the handler returns. One
 * sent with kill, sigqueue or tgkill (si_code <= 0), and an asynchronous
 * machine-check report (BUS_MCEERR_AO), do not: returning swallows them.
 */
static bool gmem_fault_repeats(const siginfo_t *si)
{
	return si->si_code > 0 && si->si_code != BUS_MCEERR_AO;
}

/*
 * End the process as SIGBUS's default action would: restore SIG_DFL, then
 * either return into the faulting access (the core shows where it was) or
 * raise the signal again, unblocked, for one that would not come back.
 * Only async-signal-safe calls.
 */
static void gmem_default_action(const siginfo_t *si)
{
	struct sigaction dfl;
	sigset_t bus;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGBUS, &dfl, NULL);
	if (gmem_fault_repeats(si))
		return;
	sigemptyset(&bus);
	sigaddset(&bus, SIGBUS);
	pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
	raise(SIGBUS);
	/* Not reached: the default action ends the process. */
	_exit(128 + SIGBUS);
}

static void gmem_on_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	/* si_code > 0: raised by the kernel for an access, not sent by kill. */
	for (unsigned int i = 0; si->si_code > 0 && i < GMEM_GUARD_SLOTS; i++) {
		struct gmem_guard *g = &gmem_guards[i];
		uintptr_t base = atomic_load(&g->base);
		size_t len = atomic_load(&g->len);

		if (base == 0 || len == 0 || a - base >= len)
			continue;
		if (mmap((void *)base, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
			 0) == MAP_FAILED)
			break;
		atomic_store(&g->lost, true);
		atomic_fetch_add(&gmem_faults, 1);
		return;
	}
	/* Not ours: the previous handler, or the default action on return. */
	if ((gmem_old_bus.sa_flags & SA_SIGINFO) && gmem_old_bus.sa_sigaction) {
		gmem_old_bus.sa_sigaction(sig, si, uc);
		return;
	}
	if (gmem_old_bus.sa_handler != SIG_DFL && gmem_old_bus.sa_handler != SIG_IGN) {
		gmem_old_bus.sa_handler(sig);
		return;
	}
	if (gmem_old_bus.sa_handler == SIG_IGN && !gmem_fault_repeats(si))
		return; /* sent, and the program chose to ignore SIGBUS before us */
	gmem_default_action(si);
}

/*
 * (Re)installed at every mapping, not once: a program may have replaced it
 * meanwhile (test harnesses reset SIGBUS around each test). The lock keeps
 * two threads from each saving the other's install as "previous".
 */
static void gmem_guard_install(void)
{
	struct sigaction sa, cur;

	pthread_mutex_lock(&gmem_guard_lock);
	if (sigaction(SIGBUS, NULL, &cur) == 0 &&
	    !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == gmem_on_sigbus)) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = gmem_on_sigbus;
		sa.sa_flags = SA_SIGINFO | SA_NODEFER;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGBUS, &sa, &gmem_old_bus);
	}
	pthread_mutex_unlock(&gmem_guard_lock);
}

static int gmem_guard_claim(void *base, size_t len)
{
	gmem_guard_install();
	for (int i = 0; i < GMEM_GUARD_SLOTS; i++) {
		uintptr_t free_slot = 0;

		if (!atomic_compare_exchange_strong(&gmem_guards[i].base, &free_slot,
						    (uintptr_t)base))
			continue;
		atomic_store(&gmem_guards[i].lost, false);
		atomic_store(&gmem_guards[i].len, len);
		return i;
	}
	return -ENOSPC;
}

static void gmem_guard_release(int i)
{
	if (i < 0 || i >= GMEM_GUARD_SLOTS)
		return;
	atomic_store(&gmem_guards[i].len, 0);
	atomic_store(&gmem_guards[i].lost, false);
	atomic_store(&gmem_guards[i].base, 0);
}

unsigned int gmem_fault_count(void)
{
	return atomic_load(&gmem_faults);
}

bool gmem_lost(const struct gmem *m)
{
	for (unsigned int i = 0; i < m->nregions && i < GMEM_MAX_REGIONS; i++) {
		int g = m->regions[i].guard;

		if (m->regions[i].mmap_base && g >= 0 && g < GMEM_GUARD_SLOTS &&
		    atomic_load(&gmem_guards[g].lost))
			return true;
	}
	return false;
}

const char *gmem_why(const struct gmem *m)
{
	return m->why ? m->why : "";
}

void gmem_init(struct gmem *m)
{
	memset(m, 0, sizeof(*m));
}

uint64_t gmem_budget_used(const struct gmem_budget *b)
{
	return atomic_load(&b->used);
}

int gmem_add_budget(struct gmem *m, struct gmem_budget *b)
{
	if (m->nregions)
		return -EBUSY;
	if (m->nbudgets >= GMEM_MAX_BUDGETS)
		return -ENOSPC;
	m->budgets[m->nbudgets++] = b;
	return 0;
}

void gmem_init_like(struct gmem *m, const struct gmem *like)
{
	gmem_init(m);
	for (unsigned int i = 0; i < like->nbudgets && i < GMEM_MAX_BUDGETS; i++)
		m->budgets[m->nbudgets++] = like->budgets[i];
}

/* Take len from b unless that passes its limit (or wraps). */
static bool gmem_budget_take(struct gmem_budget *b, uint64_t len)
{
	uint64_t cur = atomic_load(&b->used);

	do {
		if (cur > UINT64_MAX - len || (b->limit && cur + len > b->limit))
			return false;
	} while (!atomic_compare_exchange_weak(&b->used, &cur, cur + len));
	return true;
}

static void gmem_budget_give(struct gmem_budget *b, uint64_t len)
{
	atomic_fetch_sub(&b->used, len);
}

/* Charge len to every budget of m, or to none: the first that refuses is m->over. */
static int gmem_charge(struct gmem *m, uint64_t len)
{
	for (unsigned int i = 0; i < m->nbudgets; i++) {
		if (gmem_budget_take(m->budgets[i], len))
			continue;
		m->over = m->budgets[i];
		m->over_asked = len;
		while (i-- > 0)
			gmem_budget_give(m->budgets[i], len);
		return -EDQUOT;
	}
	return 0;
}

static void gmem_uncharge(struct gmem *m, struct gmem_region *e)
{
	if (!e->charged)
		return;
	for (unsigned int i = 0; i < m->nbudgets; i++)
		gmem_budget_give(m->budgets[i], e->mmap_len);
	e->charged = false;
}

void gmem_budget_lend(struct gmem *m)
{
	for (unsigned int i = 0; i < m->nregions && i < GMEM_MAX_REGIONS; i++)
		gmem_uncharge(m, &m->regions[i]);
}

void gmem_budget_reclaim(struct gmem *m)
{
	for (unsigned int i = 0; i < m->nregions && i < GMEM_MAX_REGIONS; i++) {
		struct gmem_region *e = &m->regions[i];

		if (e->charged || !e->mmap_base)
			continue;
		/* Unconditionally: these bytes are mapped, the count must say so. */
		for (unsigned int k = 0; k < m->nbudgets; k++)
			atomic_fetch_add(&m->budgets[k]->used, e->mmap_len);
		e->charged = true;
	}
}

/* [a, a+alen) and [b, b+blen) intersect; both lengths non-zero, no wrap. */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/*
 * Region ends are exclusive and must be representable, so a region may not
 * end exactly at 2^64: that costs nothing real and keeps every check simple.
 */
static int gmem_validate(const struct gmem *m, const struct vhost_user_mem_region *r)
{
	uint64_t size = r->memory_size;

	if (size == 0)
		return -EINVAL;
	if (r->guest_phys_addr > UINT64_MAX - size || r->userspace_addr > UINT64_MAX - size ||
	    r->mmap_offset > UINT64_MAX - size)
		return -EINVAL;
	if ((uint64_t)(r->mmap_offset + size) > (uint64_t)SIZE_MAX)
		return -EINVAL;
	for (unsigned int i = 0; i < m->nregions; i++) {
		const struct gmem_region *e = &m->regions[i];

		if (ranges_overlap(e->gpa, e->size, r->guest_phys_addr, size) ||
		    ranges_overlap(e->uaddr, e->size, r->userspace_addr, size))
			return -EINVAL;
	}
	if (m->nregions >= GMEM_MAX_REGIONS)
		return -ENOSPC;
	return 0;
}

static void gmem_store(struct gmem *m, const struct vhost_user_mem_region *r, uint8_t *host,
		       void *base, size_t len, int guard, bool charged)
{
	struct gmem_region *e = &m->regions[m->nregions++];

	e->gpa = r->guest_phys_addr;
	e->size = r->memory_size;
	e->uaddr = r->userspace_addr;
	e->mmap_offset = r->mmap_offset;
	e->host = host;
	e->mmap_base = base;
	e->mmap_len = len;
	e->guard = guard;
	e->charged = charged;
}

/*
 * Mapping unit: hugetlbfs wants whole huge pages, offset and length (it
 * reports the huge page size as st_blksize); everything else whole pages.
 */
static size_t gmem_align(const struct stat *st)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t align = page > 0 ? (size_t)page : 4096;

	if (st->st_blksize > 0 && (size_t)st->st_blksize > align &&
	    ((size_t)st->st_blksize & ((size_t)st->st_blksize - 1)) == 0)
		align = (size_t)st->st_blksize;
	return align;
}

int gmem_add(struct gmem *m, const struct vhost_user_mem_region *r, int fd)
{
	uint64_t end = r->mmap_offset + r->memory_size; /* no wrap: validated */
	size_t align, lead, len;
	struct stat st;
	void *base;
	int ret, guard;

	m->why = NULL;
	m->over = NULL;
	m->over_asked = 0;
	ret = gmem_validate(m, r);
	if (ret) {
		m->why = ret == -ENOSPC ? "no free memory slot"
					: "size zero, an end that wraps, or an overlap";
		return ret;
	}
	if (fd < 0) {
		m->why = "no fd";
		return -EBADF;
	}
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		m->why = "fstat on its fd failed";
		return ret;
	}
	/*
	 * Guest RAM is a file (memfd, hugetlbfs, shm) or a DAX device. A file
	 * must cover the whole region: a page past its end would fault.
	 */
	if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
		m->why = "its fd is not a file or a memory device";
		return -EINVAL;
	}
	if (S_ISREG(st.st_mode) && (st.st_size < 0 || (uint64_t)st.st_size < end)) {
		m->why = "it ends past the end of its file";
		return -EINVAL;
	}
	/* Map from the offset rounded down, not from the start of the file. */
	align = gmem_align(&st);
	lead = (size_t)(r->mmap_offset & (align - 1));
	len = lead + (size_t)r->memory_size;
	if (len > SIZE_MAX - (align - 1)) {
		m->why = "too large to map";
		return -EINVAL;
	}
	len = (len + align - 1) & ~(align - 1);
	/* Charged before mapping: a refused size never touches the address space. */
	ret = gmem_charge(m, len);
	if (ret) {
		m->why = "over a limit on mapped guest memory";
		return ret;
	}
	base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
		    (off_t)(r->mmap_offset - lead));
	if (base == MAP_FAILED) {
		ret = -errno;
		m->why = "mmap of its fd failed";
		goto fail_charge;
	}
	guard = gmem_guard_claim(base, len);
	if (guard < 0) {
		munmap(base, len);
		m->why = "too many mappings in this process";
		ret = guard;
		goto fail_charge;
	}
	gmem_store(m, r, (uint8_t *)base + lead, base, len, guard, true);
	return 0;

fail_charge:
	for (unsigned int i = 0; i < m->nbudgets; i++)
		gmem_budget_give(m->budgets[i], len);
	return ret;
}

int gmem_add_host(struct gmem *m, const struct vhost_user_mem_region *r, void *host)
{
	int ret;

	ret = gmem_validate(m, r);
	if (ret)
		return ret;
	if (!host)
		return -EINVAL;
	gmem_store(m, r, host, NULL, 0, -1, false);
	return 0;
}

static void gmem_unmap(struct gmem *m, struct gmem_region *e)
{
	gmem_uncharge(m, e);
	if (e->mmap_base) {
		/* Out of the handler's table before the range can be reused. */
		gmem_guard_release(e->guard);
		munmap(e->mmap_base, e->mmap_len);
	}
	memset(e, 0, sizeof(*e));
}

int gmem_remove(struct gmem *m, const struct vhost_user_mem_region *r)
{
	/* The spec says mmap_offset is to be ignored when matching. */
	for (unsigned int i = 0; i < m->nregions; i++) {
		struct gmem_region *e = &m->regions[i];

		if (e->gpa != r->guest_phys_addr || e->size != r->memory_size ||
		    e->uaddr != r->userspace_addr)
			continue;
		gmem_unmap(m, e);
		memmove(e, e + 1, (m->nregions - i - 1) * sizeof(*e));
		m->nregions--;
		memset(&m->regions[m->nregions], 0, sizeof(*e));
		return 0;
	}
	return -ENOENT;
}

void gmem_clear(struct gmem *m)
{
	for (unsigned int i = 0; i < m->nregions; i++)
		gmem_unmap(m, &m->regions[i]);
	m->nregions = 0;
}

/* Region holding addr, keyed by gpa (uva false) or user address (uva true). */
static const struct gmem_region *gmem_find(const struct gmem *m, uint64_t addr, bool uva,
					   uint64_t *off)
{
	for (unsigned int i = 0; i < m->nregions && i < GMEM_MAX_REGIONS; i++) {
		const struct gmem_region *e = &m->regions[i];
		uint64_t start = uva ? e->uaddr : e->gpa;

		if (addr >= start && addr - start < e->size) {
			*off = addr - start;
			return e;
		}
	}
	return NULL;
}

static void *gmem_translate(const struct gmem *m, uint64_t addr, bool uva, uint64_t *len)
{
	const struct gmem_region *e;
	uint64_t off;

	e = gmem_find(m, addr, uva, &off);
	if (!e)
		return NULL;
	if (*len > e->size - off)
		*len = e->size - off;
	return e->host + off;
}

static void *gmem_range(const struct gmem *m, uint64_t addr, bool uva, uint64_t len)
{
	const struct gmem_region *e;
	uint64_t off;

	if (len == 0)
		return NULL;
	e = gmem_find(m, addr, uva, &off);
	if (!e || len > e->size - off)
		return NULL;
	return e->host + off;
}

void *gmem_gpa_to_host(const struct gmem *m, uint64_t gpa, uint64_t *len)
{
	return gmem_translate(m, gpa, false, len);
}

void *gmem_uva_to_host(const struct gmem *m, uint64_t uva, uint64_t *len)
{
	return gmem_translate(m, uva, true, len);
}

void *gmem_gpa_range(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	return gmem_range(m, gpa, false, len);
}

void *gmem_uva_range(const struct gmem *m, uint64_t uva, uint64_t len)
{
	return gmem_range(m, uva, true, len);
}
