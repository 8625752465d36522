package main

// This file is the parent's side: it starts the broker process and the
// member processes (this binary re-executed), and reads each member's RSS
// from outside, in /proc/<pid>/status.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// startBroker starts this binary (exe) as the broker process, with topic
// holding partitions x perPartition messages of size bytes, and returns its
// address once the backlog is produced. stop ends the process and waits
// for it; it also ends when this process dies (its stdin closes).
func startBroker(ctx context.Context, exe, topic string, partitions, perPartition, size int) (addr string, stop func(), err error) {
	cmd := exec.Command(exe, "-broker",
		"-b.topic="+topic,
		fmt.Sprintf("-b.partitions=%d", partitions),
		fmt.Sprintf("-b.messages=%d", perPartition),
		fmt.Sprintf("-b.size=%d", size))
	cmd.Stderr = os.Stderr
	killWithParent(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			stdin.Close()
			t := time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Kill() })
			_ = cmd.Wait()
			t.Stop()
		})
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), addrPrefix); ok {
				lines <- a
			}
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case a, ok := <-lines:
		if ok {
			return a, stop, nil
		}
		stop()
		return "", nil, errors.New("memory: the broker process exited before it was ready")
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		stop()
		return "", nil, fmt.Errorf("memory: waiting for the broker: %w", ctx.Err())
	}
}

// sample is one reading of a member's resident set.
type sample struct {
	At  time.Duration // since the member started
	RSS uint64        // bytes
}

// outcome is what the parent learned about one member process.
type outcome struct {
	Samples []sample      // every ~100 ms
	HWM     uint64        // VmHWM, read after the member's result
	First   time.Duration // the first handler call, since the start; 0: none
	Result  result
}

// Peak returns the member's peak resident set: its VmHWM, or the largest
// sample if that is larger (it never is on Linux).
func (o outcome) Peak() uint64 {
	p := o.HWM
	for _, s := range o.Samples {
		p = max(p, s.RSS)
	}
	return p
}

// At returns the first sample at or after d.
func (o outcome) At(d time.Duration) (uint64, bool) {
	for _, s := range o.Samples {
		if s.At >= d {
			return s.RSS, true
		}
	}
	return 0, false
}

// runMember runs the member process s (exe re-executed) until it reports its
// result, sampling its VmRSS every interval; it kills the member when ctx
// ends (a hang guard) and always waits for it. stderr receives the member's
// stderr (nil: discarded).
func runMember(ctx context.Context, exe string, s spec, interval time.Duration, stderr io.Writer) (outcome, error) {
	var o outcome
	cmd := exec.Command(exe, s.args()...)
	cmd.Stderr = stderr
	killWithParent(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return o, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return o, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return o, err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	var waitErr error
	// Wait only after stdout is read to its end (exec's rule).
	var firstMu sync.Mutex
	res := make(chan result, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == firstLine:
				firstMu.Lock()
				o.First = time.Since(start)
				firstMu.Unlock()
			case strings.HasPrefix(line, resultPrefix):
				var r result
				if err := json.Unmarshal([]byte(line[len(resultPrefix):]), &r); err == nil {
					res <- r
				}
			}
		}
		waitErr = cmd.Wait()
		close(exited)
	}()
	defer func() {
		stdin.Close()
		t := time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Kill() })
		<-exited
		t.Stop()
	}()

	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if rss, _, err := procMem(pid); err == nil && rss > 0 { // 0: still in exec
			o.Samples = append(o.Samples, sample{time.Since(start), rss})
		}
		select {
		case r := <-res:
			o.Result = r
			_, hwm, err := procMem(pid)
			o.HWM = hwm
			firstMu.Lock()
			defer firstMu.Unlock()
			if err != nil {
				return o, fmt.Errorf("memory: %s: reading VmHWM: %w", s.Row, err)
			}
			if r.Err != "" {
				return o, fmt.Errorf("memory: %s: consumer failed: %s", s.Row, r.Err)
			}
			return o, nil
		case <-exited:
			return o, fmt.Errorf("memory: %s: member exited without a result: %v", s.Row, waitErr)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return o, fmt.Errorf("memory: %s: %w (killed)", s.Row, ctx.Err())
		case <-tick.C:
		}
	}
}

// procMem returns the VmRSS and VmHWM of process pid, in bytes.
func procMem(pid int) (rss, hwm uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	var found int
	for line := range strings.Lines(string(b)) {
		name, val, ok := strings.Cut(line, ":")
		if !ok || name != "VmRSS" && name != "VmHWM" {
			continue
		}
		f := strings.Fields(val) // "123456 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("memory: /proc/%d/status: %q", pid, line)
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, 0, err
		}
		found++
		if name == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("memory: /proc/%d/status: no VmRSS/VmHWM (a zombie?)", pid)
	}
	return rss, hwm, nil
}
