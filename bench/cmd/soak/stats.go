package main

// This file measures a member process: RSS and open sockets from /proc,
// goroutines from the stats file the member writes itself.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// sample is one measurement of the observed member and the group.
type sample struct {
	at         time.Duration
	rssKiB     int64 // -1 when unknown
	goroutines int   // -1 when unknown
	conns      int   // -1 when unknown
	lag        int64 // -1 when unknown
}

// writeStats writes the process's goroutine count to path every second
// until stop is closed.
func writeStats(path string, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		tmp := path + ".tmp"
		if os.WriteFile(tmp, []byte(strconv.Itoa(runtime.NumGoroutine())+"\n"), 0o644) == nil {
			_ = os.Rename(tmp, path)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// readGoroutines reads a member's stats file; -1 if it cannot.
func readGoroutines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// rss returns the process's resident set in KiB (VmRSS); -1 if unknown.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// sockets returns the number of the process's open file descriptors that
// are sockets (its connections to the brokers); -1 if unknown.
func sockets(pid int) int {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}
