package main

// This file measures a member process: RSS and open sockets from /proc,
// goroutines and the Go heap from the stats file the member writes itself
// (and, with -heapprofile, the observed member's heap profiles).

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// sample is one measurement of the observed member and the group.
type sample struct {
	at         time.Duration
	rssKiB     int64 // -1 when unknown
	goroutines int   // -1 when unknown
	heapKiB    int64 // the Go heap in use; -1 when unknown
	goKiB      int64 // what the Go runtime has mapped (Sys minus HeapReleased): an upper bound of its share of RSS; the rest is the binary, C memory (librdkafka) and libraries; -1 when unknown
	conns      int   // -1 when unknown
	lag        int64 // -1 when unknown
}

// writeStats writes the process's goroutine count, Go heap in use and
// what the Go runtime holds from the OS (Sys minus HeapReleased; KiB) to path every second until stop is closed. If profiles is not
// empty it also writes a heap profile every minute, to profiles with the
// minute appended ("-3m.pprof").
func writeStats(path, profiles string, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start := time.Now()
	nextProfile := start.Add(time.Minute)
	for {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		tmp := path + ".tmp"
		if os.WriteFile(tmp, fmt.Appendf(nil, "%d %d %d\n", runtime.NumGoroutine(), ms.HeapInuse/1024, (ms.Sys-ms.HeapReleased)/1024), 0o644) == nil {
			_ = os.Rename(tmp, path)
		}
		if profiles != "" && time.Now().After(nextProfile) {
			writeHeapProfile(fmt.Sprintf("%s-%dm.pprof", profiles, int(time.Since(start).Round(time.Minute)/time.Minute)))
			nextProfile = nextProfile.Add(time.Minute)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// writeHeapProfile writes the process's heap profile to path (the
// allocations live at the last GC; go tool pprof -sample_index=inuse_space).
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.Lookup("heap").WriteTo(f, 0)
}

// readStats reads a member's stats file: goroutines, Go heap in use and
// the Go runtime's total (KiB); -1 for what it cannot.
func readStats(path string) (int, int64, int64) {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1, -1, -1
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return -1, -1, -1
	}
	n, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.ParseInt(f[1], 10, 64)
	g, err3 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return -1, -1, -1
	}
	return n, h, g
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
