# smtpkit: a thin wrapper around Meson.
#
#   make            build build/smtpkit
#   make demo       install what is missing, build, send a message to a local server
#   make check      install what is missing, build and run every test (also under
#                   ASan+UBSan, and a short fuzz run); ends with "N passed, N failed"
#   make bench      compare smtpkit with msmtp, curl, swaks, smtplib and smtp-source
#   make fuzz       run every fuzz target for FUZZ_TIME seconds (default 60)
#   make install    PREFIX=/usr/local DESTDIR=
#   make install-sendmail   /usr/sbin/sendmail, /usr/lib/sendmail, mailq and
#                   newaliases become links to $(PREFIX)/bin/smtpkit (Debian
#                   alternatives when present); refuses, changing nothing,
#                   when another MTA owns them, unless FORCE=1
#   make uninstall-sendmail   undo it, and put back what FORCE=1 set aside

PREFIX ?= /usr/local
DESTDIR ?=
FUZZ_TIME ?= 60
FORCE ?= 0
MESON ?= meson
NINJA ?= ninja

.PHONY: all build deps demo check bench fuzz install install-sendmail \
	uninstall-sendmail clean

all: build

build/build.ninja:
	$(MESON) setup build --prefix=$(PREFIX)

build: build/build.ninja
	$(NINJA) -C build

deps:
	@scripts/install-deps

demo: deps
	@$(MAKE) --no-print-directory build
	@scripts/demo build/smtpkit

check: deps
	@scripts/check

bench: deps
	@$(MAKE) --no-print-directory build
	@bench/run build/smtpkit

build-fuzz/build.ninja:
	CC=clang $(MESON) setup build-fuzz -Dfuzz=true -Db_lundef=false \
	    -Db_sanitize=address,undefined -Dc_args=-fsanitize=fuzzer-no-link

fuzz: build-fuzz/build.ninja
	$(NINJA) -C build-fuzz
	@scripts/fuzz build-fuzz $(FUZZ_TIME)

install: build
	$(MESON) configure build --prefix=$(PREFIX)
	$(NINJA) -C build
	DESTDIR=$(DESTDIR) $(MESON) install -C build --no-rebuild

install-sendmail:
	@FORCE=$(FORCE) scripts/install-sendmail install $(PREFIX)/bin/smtpkit

uninstall-sendmail:
	@scripts/install-sendmail uninstall $(PREFIX)/bin/smtpkit

clean:
	rm -rf build build-asan build-fuzz
