package main

// This file measures one row on one workload: the parent runs the embedded
// broker with the backlog, starts the row as a member process (this binary
// re-executed with -member) in a fresh group, and reads the member's VmHWM
// in /proc/<pid>/status when it reports; the member consumes until it has
// handled -messages or -duration has passed since its first message, and
// prints what it handled as one JSON line.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// workload is a handler: how long each call takes.
type workload struct {
	name string
	base time.Duration // every call sleeps this long (0: returns at once)
	// Every 100th offset of each partition (offset % 100 == 99) sleeps slow
	// instead, if slow > 0: 1% of the calls, spread evenly.
	slow time.Duration
}

var workloads = []workload{
	{"no-op", 0, 0},
	{"1ms", time.Millisecond, 0},
	{"1ms+1%300ms", time.Millisecond, 300 * time.Millisecond},
}

func (w workload) sleep(offset int64) time.Duration {
	if w.slow > 0 && offset%100 == 99 {
		return w.slow
	}
	return w.base
}

func workloadNames() []string {
	var n []string
	for _, w := range workloads {
		n = append(n, w.name)
	}
	return n
}

// memberSpec is what a throughput member is told on its command line.
type memberSpec struct {
	Row         string
	Workload    string
	Brokers     string
	Topic       string
	Group       string
	Concurrency int
	Messages    int64         // stop after this many handled
	Duration    time.Duration // or this long after the first message
}

func (s memberSpec) args() []string {
	return []string{
		"-member=" + s.Row, "-m.workload=" + s.Workload, "-m.brokers=" + s.Brokers,
		"-m.topic=" + s.Topic, "-m.group=" + s.Group,
		fmt.Sprintf("-m.concurrency=%d", s.Concurrency), fmt.Sprintf("-m.messages=%d", s.Messages),
		"-m.duration=" + s.Duration.String(),
	}
}

// memberResult is the member's report.
type memberResult struct {
	Handled int64
	// Wall runs from the first handler call's start to the stop: the call
	// that reached Messages, or Duration after the first call.
	Wall time.Duration
	// CloseTimeout: the consumer had not returned 30s after the stop (the
	// figures are still valid; the process is killed).
	CloseTimeout bool   `json:",omitempty"`
	Err          string `json:",omitempty"`
}

// Rate is messages per second of Wall.
func (r memberResult) Rate() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Handled) / r.Wall.Seconds()
}

const resultPrefix = "result "

// memberMain runs a throughput member and returns its exit code. It exits
// when its stdin closes (the parent is gone); after its result it waits for
// that, so that the parent can read its VmHWM, for at most a minute.
func memberMain(s memberSpec, verbose bool) int {
	var w workload
	for _, x := range workloads {
		if x.name == s.Workload {
			w = x
		}
	}
	var r row
	for _, x := range rows {
		if x.name == s.Row {
			r = x
		}
	}
	if r.consume == nil || w.name == "" {
		fmt.Fprintf(os.Stderr, "peers: unknown member row %q or workload %q\n", s.Row, s.Workload)
		return 2
	}
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	go func() {
		<-stdinClosed
		os.Exit(3) // the parent is gone, or done with us
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		handled   atomic.Int64
		first     atomic.Int64 // unix ns of the first call's start
		stopAt    atomic.Int64 // unix ns of the stop
		firstOnce sync.Once
	)
	stop := func() {
		stopAt.CompareAndSwap(0, time.Now().UnixNano())
		cancel()
	}
	handle := func(_ context.Context, _ int32, o int64) error {
		firstOnce.Do(func() {
			first.Store(time.Now().UnixNano())
			time.AfterFunc(s.Duration, stop)
		})
		if d := w.sleep(o); d > 0 {
			time.Sleep(d)
		}
		if stopAt.Load() != 0 {
			return nil // finished after the stop: not in Wall, not counted
		}
		if handled.Add(1) == s.Messages {
			stop()
		}
		return nil
	}
	log := slog.New(slog.DiscardHandler)
	if verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ms := churn.MemberSpec{
		Brokers: strings.Split(s.Brokers, ","), Group: s.Group, Topic: s.Topic,
		Concurrency: s.Concurrency, Defaults: true, Protocol: defaultProtocol(r.name),
	}
	done := make(chan error, 1)
	go func() { done <- r.consume(ctx, ms, handle, log) }()
	var res memberResult
	select {
	case err := <-done:
		if err != nil {
			res.Err = err.Error()
		}
		if ctx.Err() == nil && res.Err == "" {
			res.Err = "the consumer returned before the stop"
		}
	case <-ctx.Done():
		select {
		case err := <-done:
			if err != nil {
				res.Err = err.Error()
			}
		case <-time.After(30 * time.Second):
			res.CloseTimeout = true
		}
	}
	res.Handled = handled.Load()
	if f := first.Load(); f != 0 {
		end := stopAt.Load()
		if end == 0 {
			end = time.Now().UnixNano()
		}
		res.Wall = time.Duration(end - f)
	}
	b, _ := json.Marshal(res)
	fmt.Println(resultPrefix + string(b))
	select {
	case <-stdinClosed:
	case <-time.After(time.Minute):
	}
	return 0
}

// defaultProtocol is the rebalance protocol each client uses by default:
// kgo's default balancer is cooperative-sticky, the others' are eager.
func defaultProtocol(row string) string {
	if row == "inorder/franz" {
		return "cooperative"
	}
	return "eager"
}

// outcome is what the parent learned about one member process.
type outcome struct {
	Result memberResult
	HWM    uint64 // VmHWM, bytes
}

// runMember runs the member s until it reports, and reads its VmHWM then. It
// kills the member when ctx ends (a hang guard) and always waits for it.
func runMember(ctx context.Context, exe string, s memberSpec, stderr io.Writer) (outcome, error) {
	var o outcome
	cmd := exec.Command(exe, s.args()...)
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return o, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return o, err
	}
	if err := cmd.Start(); err != nil {
		return o, err
	}
	res := make(chan memberResult, 1)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), resultPrefix); ok {
				var r memberResult
				if err := json.Unmarshal([]byte(line), &r); err == nil {
					res <- r
				}
			}
		}
		exited <- cmd.Wait() // only after stdout is read to its end (exec's rule)
	}()
	defer func() {
		stdin.Close()
		t := time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Kill() })
		<-exited
		t.Stop()
	}()
	select {
	case r := <-res:
		o.Result = r
		hwm, err := vmHWM(cmd.Process.Pid)
		if err != nil {
			return o, fmt.Errorf("%s: reading VmHWM: %w", s.Row, err)
		}
		o.HWM = hwm
		if r.Err != "" {
			return o, fmt.Errorf("%s on %s: consumer failed: %s", s.Row, s.Workload, r.Err)
		}
		return o, nil
	case err := <-exited:
		exited <- err // for the deferred wait
		return o, fmt.Errorf("%s on %s: member exited without a result: %v", s.Row, s.Workload, err)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return o, fmt.Errorf("%s on %s: %w (killed)", s.Row, s.Workload, ctx.Err())
	}
}

// vmHWM returns the peak resident set of process pid, in bytes (Linux).
func vmHWM(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if val, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(val) // "123456 kB"
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("/proc/%d/status: %q", pid, line)
			}
			n, err := strconv.ParseUint(f[0], 10, 64)
			return n << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM (a zombie?)", pid)
}
