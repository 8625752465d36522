package main

// A regression test for issue 19: a consumer given a backlog far larger
// than its MaxBufferedBytes keeps its process's resident set bounded by
// that budget, not by the backlog. Before the engine owned the flow, each
// partition fetched until its offset window (81,880 offsets) was full: the
// whole backlog landed in the consumer's memory.

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// The backlog: 8 x 4,000 x 4 KiB = 125 MiB in the broker process.
	regressPartitions   = 8
	regressPerPartition = 4000
	regressSize         = 4096
	// The consumers' budget, and the bound on their peak RSS. Measured on
	// 2026-12-06 (2 shared cores, AMD EPYC), two runs: peaks of 48-61
	// (kafkago), 50-53 (confluent) and 57-60 MiB (franz) with this budget;
	// 160, 196 and 154 MiB on the code before the budget (commit 2583056,
	// default options), which fetched the whole backlog within the first
	// second. The bound
	// leaves room for the Go runtime, librdkafka and a noisy machine's GC
	// timing (the Go heap runs up to twice its live bytes).
	regressBudget = 8 << 20
	regressBound  = 96 << 20
)

// TestBacklogPeakRSSIsBoundedByMaxBufferedBytes runs a consumer of each
// adapter as a child process (this command built without -race, so that
// the race detector's shadow memory does not blur the figure) on a backlog
// of 125 MiB with a budget of 8 MiB and a 10 ms handler, reads its RSS from
// outside for 4 s after its first message, and checks that its peak stays
// under 96 MiB.
func TestBacklogPeakRSSIsBoundedByMaxBufferedBytes(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/<pid>/status")
	}
	if testing.Short() {
		t.Skip("builds this command and runs a broker and three consumer processes (~30s)")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the child processes:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // a hang guard
	defer cancel()
	exe := filepath.Join(t.TempDir(), "memory")
	build := exec.CommandContext(ctx, goTool, "build", "-race=false", "-o", exe, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr, stop, err := startBroker(ctx, exe, "backlog", regressPartitions, regressPerPartition, regressSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)

	for _, row := range []string{"kafkago", "confluent", "franz"} {
		t.Run(row, func(t *testing.T) {
			s := spec{
				Row:         row,
				Brokers:     addr,
				Topic:       "backlog",
				Group:       "regress-" + row,
				Concurrency: 16,
				Handler:     10 * time.Millisecond, // 1,600 messages (6 MiB) a second at most
				Duration:    4 * time.Second,
				Stop:        regressPartitions * regressPerPartition,
				MaxBuffered: regressBudget,
			}
			mctx, cancel := context.WithTimeout(ctx, 2*time.Minute) // a hang guard
			defer cancel()
			var stderr syncBuffer
			o, err := runMember(mctx, exe, s, 50*time.Millisecond, &stderr)
			if err != nil {
				t.Fatalf("%v\nmember stderr:\n%s", err, stderr.String())
			}
			// A consumer that fetched nothing would pass the bound.
			if o.First == 0 || o.Result.Handled == 0 {
				t.Fatalf("the consumer handled nothing (result %+v)", o.Result)
			}
			peak := o.Peak()
			t.Logf("%s: peak RSS %s (bound %s), %d handled, Go heap peak %s, RSS over time: %s",
				row, mib(peak), mib(regressBound), o.Result.Handled, mib(o.Result.GoHeap), samples(o, time.Second))
			if peak > regressBound {
				t.Errorf("peak RSS %s > %s with MaxBufferedBytes %s and a %s backlog: the consumer buffers the backlog, not its budget",
					mib(peak), mib(regressBound), mib(regressBudget),
					mib(regressPartitions*regressPerPartition*regressSize))
			}
		})
	}
}

// samples formats o's RSS every step.
func samples(o outcome, step time.Duration) string {
	var b strings.Builder
	next := time.Duration(0)
	for _, s := range o.Samples {
		if s.At >= next {
			fmt.Fprintf(&b, "%.1fs %s, ", s.At.Seconds(), mib(s.RSS))
			next = s.At + step
		}
	}
	return strings.TrimSuffix(b.String(), ", ")
}

// syncBuffer is a bytes.Buffer safe for the writes of exec's copying
// goroutine and a read after it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
