package confluent_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/watermark/metadata"
)

// The crash test re-executes the test binary as the consumer process; these
// environment variables switch TestMain into that role.
const (
	envChild    = "INORDER_CONFLUENT_CRASH_CHILD" // child index
	envBrokers  = "INORDER_CONFLUENT_BROKERS"
	envOut      = "INORDER_CONFLUENT_OUT"
	envStrategy = "INORDER_CONFLUENT_STRATEGY"
)

const (
	crashTopic = "crash"
	crashGroup = "crash-group"
)

func TestMain(m *testing.M) {
	if idx := os.Getenv(envChild); idx != "" {
		os.Exit(crashChild(idx))
	}
	os.Exit(m.Run())
}

// crashChild consumes crashTopic and appends "child partition offset" to the
// output file when each handler finishes, before the message is acked (one
// O_APPEND write per line: a SIGKILL cannot tear it). It exits 0 on SIGINT
// after a clean shutdown.
func crashChild(idx string) int {
	f, err := os.OpenFile(os.Getenv(envOut), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer f.Close()
	cons, err := confluent.NewConsumer([]string{os.Getenv(envBrokers)}, crashGroup, []string{crashTopic},
		append(fastOpts(slogDiscard()), strategy(os.Getenv(envStrategy)),
			confluent.WithConcurrency(4), confluent.WithWindow(3000))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Println("ready") // the parent may interrupt us from now on
	var mu sync.Mutex
	err = cons.Run(ctx, func(_ context.Context, m *kafka.Message) error {
		d := time.Duration(rand.IntN(1000)) * time.Microsecond
		if rand.IntN(200) == 0 {
			d = 30 * time.Millisecond // a slow one holds the commit point
		}
		time.Sleep(d)
		line := idx + " " + strconv.Itoa(int(m.TopicPartition.Partition)) + " " +
			strconv.FormatInt(int64(m.TopicPartition.Offset), 10) + "\n"
		mu.Lock()
		_, err := f.WriteString(line)
		mu.Unlock()
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "Run:", err)
		return 1
	}
	return 0
}

// coverage holds, per partition, the offsets a commit marks done: below the
// committed offset, or in its decoded metadata.
type coverage map[int32]struct {
	commit int64
	done   func(int64) bool
}

func readCoverage(ctx context.Context, t *testing.T, c *kafkatest.Cluster) coverage {
	com, err := c.Committed(ctx, crashGroup, crashTopic)
	if err != nil {
		t.Fatal(err)
	}
	cov := coverage{}
	for p, cm := range com {
		set, err := metadata.Decode(cm.Metadata, cm.Offset)
		if err != nil {
			t.Fatalf("partition %d: our own commit metadata does not decode: %v", p, err)
		}
		cov[p] = struct {
			commit int64
			done   func(int64) bool
		}{cm.Offset, set.Contains}
	}
	return cov
}

func (cv coverage) has(p int32, o int64) bool {
	e, ok := cv[p]
	return ok && (o < e.commit || e.done(o))
}

// Issue: the consumer runs in a child process that is SIGKILLed at random
// moments, several times, and restarted, once with EAGER and once with
// COOPERATIVE members: every produced message is handled at least once, committed
// offsets never decrease, with commit metadata no message acked before a
// commit is handled again, and the last child commits at the log end.
func TestCrashRestartAtLeastOnceNoRewindNoRedeliveryOfCommitted(t *testing.T) {
	for _, strat := range []string{"range", "cooperative-sticky"} {
		t.Run("strategy="+strat, func(t *testing.T) { testCrash(t, strat) })
	}
}

func testCrash(t *testing.T, strat string) {
	const (
		n     = 15000
		kills = 3
	)
	c := kafkatest.Start(t, kafkatest.WithTopic(crashTopic, 4))
	ctx := timeout(t, 150*time.Second)
	if _, err := c.Produce(ctx, crashTopic, n); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "handled.txt")

	// Poll the group's commits: they must never go down.
	var (
		pollMu   sync.Mutex
		rewinds  []string
		pollDone = make(chan struct{})
	)
	pollCtx, pollCancel := context.WithCancel(ctx)
	defer pollCancel()
	go func() {
		defer close(pollDone)
		last := map[int32]int64{}
		for pollCtx.Err() == nil {
			if com, err := c.Committed(pollCtx, crashGroup, crashTopic); err == nil {
				pollMu.Lock()
				for p, cm := range com {
					if cm.Offset < last[p] {
						rewinds = append(rewinds, fmt.Sprintf("partition %d: %d after %d", p, cm.Offset, last[p]))
					}
					last[p] = max(last[p], cm.Offset)
				}
				pollMu.Unlock()
			}
			select {
			case <-pollCtx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	start := func(i int) (*exec.Cmd, *bufio.Reader) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envChild+"="+strconv.Itoa(i), envBrokers+"="+c.Addrs()[0],
			envOut+"="+out, envStrategy+"="+strat)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, bufio.NewReader(stdout)
	}
	covAtStart := make([]coverage, kills+1)
	for i := range kills {
		covAtStart[i] = readCoverage(ctx, t, c)
		cmd, _ := start(i)
		// A restarted child first waits for the dead member's session to
		// expire (2s) before it gets partitions.
		delay := time.Duration(500+rand.IntN(1000)) * time.Millisecond
		if i > 0 {
			delay += 2 * time.Second
		}
		time.Sleep(delay)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if ok, _ := committedAtEnd(ctx, c, crashGroup, crashTopic); ok {
			t.Logf("kill %d came after everything was committed", i)
		}
	}
	covAtStart[kills] = readCoverage(ctx, t, c)
	last, lastOut := start(kills)
	if line, err := lastOut.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("last child did not start: %q %v", line, err)
	}
	waitFor(ctx, t, "the last child to commit everything", func() bool {
		ok, _ := committedAtEnd(ctx, c, crashGroup, crashTopic)
		return ok
	})
	_ = last.Process.Signal(os.Interrupt)
	if err := last.Wait(); err != nil {
		t.Fatalf("last child: %v", err)
	}
	pollCancel()
	<-pollDone

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	handled := map[[2]int64]int{}
	perChild := make([]int, kills+1)
	var again []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var child, p, o int64
		if _, err := fmt.Sscan(sc.Text(), &child, &p, &o); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		handled[[2]int64{p, o}]++
		perChild[child]++
		for k := 0; k <= int(child); k++ {
			if covAtStart[k].has(int32(p), o) {
				again = append(again, fmt.Sprintf("child %d handled %d/%d, committed before child %d started", child, p, o, k))
				break
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("handled per child: %v; distinct %d of %d", perChild, len(handled), n)
	ends, err := c.LogEnd(ctx, crashTopic)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for p, e := range ends {
		for o := range e {
			if handled[[2]int64{int64(p), o}] == 0 {
				lost++
			}
		}
	}
	if lost != 0 {
		t.Errorf("%d messages never handled", lost)
	}
	if kills > 1 && perChild[0]+perChild[1] == 0 {
		t.Errorf("the first children handled nothing: the kills did not interrupt consumption")
	}
	pollMu.Lock()
	defer pollMu.Unlock()
	if len(rewinds) != 0 {
		t.Errorf("committed offsets went down %d times: %v", len(rewinds), rewinds[:min(5, len(rewinds))])
	}
	if len(again) != 0 {
		t.Errorf("%d messages handled again after a commit covered them: %v", len(again), again[:min(5, len(again))])
	}
}
