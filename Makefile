# posuto - a small Makefile in front of Meson.
PREFIX ?= /usr/local
DESTDIR ?=
SYSCONFDIR ?= /etc/posuto
BUILD ?= build
# make run: the demo's ports (plain+STLS, implicit TLS); RESET=1 brings
# back the sample mailbox.
POP3_PORT ?= 1110
POP3S_PORT ?= 1995
# The development SMTP sink (loopback, not for the internet); empty: none.
SINK_PORT ?= 1025
RESET ?=
DEMO ?= $(BUILD)/demo

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
# The build is quiet (its output only on errors) so that the banner, printed
# once the ports are bound, is the last thing on screen.  The server is
# exec'd: it is make's child, its PID is in $(DEMO)/posuto.pid.
run:
	@scripts/deps.sh run
	@echo "building $(BUILD)/posuto ..."
	@scripts/build.sh --target posuto $(BUILD) --buildtype=debugoptimized -Db_pie=true
	@POP3_PORT='$(POP3_PORT)' POP3S_PORT='$(POP3S_PORT)' SINK_PORT='$(SINK_PORT)' \
		exec scripts/demo.sh \
		$(if $(filter-out 0 no,$(RESET)),--reset) --serve $(BUILD)/posuto $(DEMO)

# Every unit and integration test, plain and under ASan+UBSan, the fuzzers
# for a bounded time, and the benchmark's smoke mode.
check:
	@scripts/check.sh

install: $(BUILD)/posuto
	install -D -m 0755 $(BUILD)/posuto $(DESTDIR)$(PREFIX)/sbin/posuto
	# the modules (lib/plugin.h): found from the binary as ../lib/posuto
	install -D -m 0644 $(BUILD)/posuto_sql.so $(DESTDIR)$(PREFIX)/lib/posuto/posuto_sql.so
	install -D -m 0644 $(BUILD)/posuto_parse.so $(DESTDIR)$(PREFIX)/lib/posuto/posuto_parse.so
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
