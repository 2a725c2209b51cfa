/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The daemon's command line. Every option is one row of options_keys: its
 * name, kind, bounds, usage text and, for a device's options, where its
 * value lands in struct dev_opts. That one table makes getopt_long's
 * options, the keys of --device and the --help text, so a device's option
 * is the same thing (bounds, messages) as an option and as a --device key.
 */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cfilt.h"
#include "loop.h"
#include "sandbox.h"
#include "sysd.h"

/* One device as the options describe it. */
struct dev_opts {
	const char *socket_path;
	int fd;		/* inherited socket, -1 for none */
	bool listening; /* fd is a listening socket (found by check_devices) */
	/* Where fd came from, for messages: --fd=3, --device fd=3, LISTEN_FDS fd 3 */
	char fd_from[SYSD_FDNAME_MAX + 48];
	const char *can_in;
	const char *can_out;
	const char *name; /* for logs and counters; NULL: from the interfaces */
	unsigned int rx_backlog;
	unsigned int tx_ack_timeout_ms;
	bool link_up;
	bool no_fd;
	bool has_tx_allow, has_rx_filter;
	const char *capture;	    /* --capture FILE, or NULL */
	uint32_t bitrate, dbitrate; /* --bitrate; 0: no pacing */
	uint64_t guest_mem_limit;   /* --guest-mem-limit: bytes its frontend may map */
	struct cfilt tx_allow;
	struct cfilt rx_filter;
};

struct options {
	struct dev_opts dev[LOOP_MAX_DEVICES];
	unsigned int ndev;
	bool with_device; /* --device given (else one device from -s/-i/-o) */
	int verbosity;	  /* vlog level */
	/* --guest-mem-total: bytes all frontends of the process may map */
	uint64_t guest_mem_total;
	bool no_sandbox;	      /* --sandbox=none */
	enum sandbox_seccomp seccomp; /* --seccomp */
	bool core_dumps;	      /* --core-dumps */
};

/* What a value is, and so how it is parsed. */
enum options_kind {
	OPTIONS_TEXT,	 /* kept as given */
	OPTIONS_FLAG,	 /* alone, or =1 / =0 */
	OPTIONS_UINT,	 /* a decimal number in min..max */
	OPTIONS_FD,	 /* an inherited fd's number */
	OPTIONS_SIZE,	 /* bytes: digits with K, M, G, T or P */
	OPTIONS_FILTERS, /* candump's filters: ',' between them, '+' in --device */
	OPTIONS_BITRATE, /* BPS[,DATA_BPS]: '+' between them in --device */
	OPTIONS_OTHER,	 /* the process's own: parsed by options_parse itself */
};

enum options_scope {
	/* A device's; as an option, every --device's default too. */
	OPTIONS_DEVICE,
	/* A device's; as an option, it describes the one device: not with --device. */
	OPTIONS_SINGLE,
	/* The process's: no --device key. */
	OPTIONS_PROCESS,
};

struct options_key {
	const char *name; /* the long option, and the --device key */
	char letter;	  /* the short option, or 0 */
	enum options_kind kind;
	enum options_scope scope;
	unsigned int min, max; /* OPTIONS_UINT's and OPTIONS_FD's bounds */
	int id;		       /* OPTIONS_OTHER: which one, for options_parse */
	/* Where it lands in struct dev_opts; the second: the has_ flag, dbitrate. */
	size_t at, at2;
	const char *arg;  /* the value's name in the usage, NULL for none */
	const char *help; /* the usage's text, lines split by '\n' */
};

extern const struct options_key options_keys[];
extern const unsigned int options_nkeys;

/*
 * Parse argv into o. 0 to run; 1 when done (--help, --version,
 * --print-capabilities printed); -1 on a usage error, after a message.
 */
int options_parse(int argc, char **argv, struct options *o);

/* The --help text. */
void options_usage(FILE *f);

#endif
