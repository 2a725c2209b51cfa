/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Guest memory backed by huge pages (QEMU's -mem-path on hugetlbfs, or a
 * hugetlb memfd): hugetlbfs maps whole huge pages only, so a region smaller
 * than one must still map, with its length rounded up. Needs root to
 * reserve huge pages, so it runs in the VM rig (the host tests of guest
 * memory are test/unit/test_gmem.c). Exits 77 where no huge page can be had.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vhost-user/gmem.h"

#define NR_HUGEPAGES "/proc/sys/vm/nr_hugepages"
#define GPA 0x40000000ull
#define UVA 0x7f1000000000ull
#define REGION (64u * 1024u) /* far below one huge page */

static long old_nr = -1;
static size_t huge_size;

static long read_long(const char *path, const char *key)
{
	char line[128];
	long v = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!key) {
			v = strtol(line, NULL, 10);
			break;
		}
		if (strncmp(line, key, strlen(key)) == 0) {
			v = strtol(line + strlen(key), NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

static bool write_long(const char *path, long v)
{
	FILE *f = fopen(path, "we");
	bool ok;

	if (!f)
		return false;
	ok = fprintf(f, "%ld\n", v) > 0;
	return fclose(f) == 0 && ok;
}

/* Reserve two huge pages; false when the kernel will not give them. */
static bool reserve_huge_pages(void)
{
	long kb = read_long("/proc/meminfo", "Hugepagesize:");

	old_nr = read_long(NR_HUGEPAGES, NULL);
	if (kb <= 0 || old_nr < 0)
		return false;
	huge_size = (size_t)kb * 1024u;
	if (!write_long(NR_HUGEPAGES, old_nr + 2))
		return false;
	return read_long("/proc/meminfo", "HugePages_Free:") >= 2;
}

static void release_huge_pages(void)
{
	if (old_nr >= 0)
		(void)write_long(NR_HUGEPAGES, old_nr);
}

/* Whether addr lies in one of this process's mappings. */
static bool mapped(const void *addr)
{
	uintptr_t a = (uintptr_t)addr;
	unsigned long lo, hi;
	char line[512];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "re");

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi;
	fclose(f);
	return found;
}

/*
 * A 64 KiB region at offset 0 of a one-huge-page memfd. The kernel maps a
 * short length on hugetlbfs but refuses to unmap it (EINVAL): gmem must map
 * and unmap the whole huge page, or every such region would stay mapped
 * after the frontend removed it. It translates into it, both sides see each
 * other's writes, and the mapping is gone after gmem_clear().
 */
static void test_region_in_huge_page(void **state)
{
	struct vhost_user_mem_region r = {
	    .guest_phys_addr = GPA, .memory_size = REGION, .userspace_addr = UVA, .mmap_offset = 0};
	struct gmem m;
	uint8_t *mine, *theirs, *probe;
	int fd;

	(void)state;
	fd = memfd_create("guest-huge", MFD_CLOEXEC | MFD_HUGETLB);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)huge_size), 0);
	mine = mmap(NULL, huge_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(mine != MAP_FAILED);
	/* The kernel's rule that makes the rounding necessary. */
	probe = mmap(NULL, REGION, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(probe != MAP_FAILED);
	assert_int_equal(munmap(probe, REGION), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(munmap(probe, huge_size), 0);

	for (unsigned int i = 0; i < REGION; i++)
		mine[i] = (uint8_t)(i * 13 + 5);
	gmem_init(&m);
	assert_int_equal(gmem_add(&m, &r, fd), 0);
	close(fd); /* gmem keeps its mapping, not the fd */
	assert_int_equal(m.nregions, 1);

	theirs = gmem_gpa_range(&m, GPA, REGION);
	assert_non_null(theirs);
	assert_memory_equal(theirs, mine, REGION);
	assert_ptr_equal(gmem_uva_range(&m, UVA, REGION), theirs);
	/* More is mapped, but the region still ends where the frontend said. */
	assert_null(gmem_gpa_range(&m, GPA, REGION + 1));
	assert_null(gmem_gpa_range(&m, GPA + REGION, 1));
	theirs[REGION - 1] = 0x5a;
	assert_int_equal(mine[REGION - 1], 0x5a);

	assert_true(mapped(theirs));
	gmem_clear(&m);
	assert_int_equal(m.nregions, 0);
	assert_false(mapped(theirs));
	assert_int_equal(munmap(mine, huge_size), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_region_in_huge_page),
	};
	const char *in_vm = getenv("VDC_IN_VM");
	int ret;

	/* It changes a system setting: only where the machine is ours (the rig). */
	if (!in_vm || strcmp(in_vm, "1") != 0) {
		printf("SKIPPED: reserves huge pages; runs only in scripts/vm-test.sh\n");
		return 77;
	}
	if (!reserve_huge_pages()) {
		printf("SKIPPED: no huge pages to be had here (needs root; run in "
		       "scripts/vm-test.sh)\n");
		release_huge_pages();
		return 77;
	}
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	release_huge_pages();
	return ret;
}
