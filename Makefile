# posuto - a small Makefile in front of Meson.
PREFIX ?= /usr/local
DESTDIR ?=
SYSCONFDIR ?= /etc/posuto
BUILD ?= build

.PHONY: all deps run check install bench bench-smoke clean

all: $(BUILD)/posuto

deps:
	@scripts/deps.sh build

$(BUILD)/build.ninja:
	@scripts/deps.sh build
	meson setup $(BUILD) --buildtype=debugoptimized -Db_pie=true

$(BUILD)/posuto: $(BUILD)/build.ninja FORCE
	ninja -C $(BUILD) posuto

FORCE:

# Runs the server on a ready demo config (127.0.0.1:1110, TLS on 1995).
run: $(BUILD)/posuto
	@scripts/demo.sh $(BUILD)/demo
	exec $(BUILD)/posuto serve -c $(BUILD)/demo/posuto.json

# Every unit and integration test, plain and under ASan+UBSan, the fuzzers
# for a bounded time, and the benchmark's smoke mode.
check:
	@scripts/check.sh

install: $(BUILD)/posuto
	install -D -m 0755 $(BUILD)/posuto $(DESTDIR)$(PREFIX)/sbin/posuto
	install -D -m 0644 man/posuto.8 $(DESTDIR)$(PREFIX)/share/man/man8/posuto.8
	install -D -m 0644 man/posuto.json.5 $(DESTDIR)$(PREFIX)/share/man/man5/posuto.json.5
	install -D -m 0640 etc/posuto.json $(DESTDIR)$(SYSCONFDIR)/posuto.json.sample
	sed 's|@SBINDIR@|$(PREFIX)/sbin|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' etc/posuto.service.in > $(BUILD)/posuto.service
	install -D -m 0644 $(BUILD)/posuto.service $(DESTDIR)$(PREFIX)/lib/systemd/system/posuto.service

bench: $(BUILD)/posuto
	@bench/run.sh

bench-smoke: $(BUILD)/posuto
	@bench/run.sh --smoke

clean:
	rm -rf $(BUILD) build-asan build-fuzz
