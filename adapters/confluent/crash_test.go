package confluent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
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
	if brokers := os.Getenv(envTxnChild); brokers != "" {
		os.Exit(txnCrashChild(brokers))
	}
	os.Exit(m.Run())
}

// crashChild consumes crashTopic and appends "child partition offset" to the
// output file when each handler finishes, before the message is acked (one
// O_APPEND write per line: a SIGKILL cannot tear it). It exits 0 on SIGINT
// after a clean shutdown.
func crashChild(idx string) int {
	hl, err := adaptertest.OpenHandledLog(os.Getenv(envOut), idx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer hl.Close()
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
	err = cons.Run(ctx, func(_ context.Context, m *kafka.Message) error {
		d := time.Duration(rand.IntN(1000)) * time.Microsecond
		if rand.IntN(200) == 0 {
			d = 30 * time.Millisecond // a slow one holds the commit point
		}
		time.Sleep(d)
		return hl.Write(m.TopicPartition.Partition, int64(m.TopicPartition.Offset))
	})
	if err != nil && !errors.Is(err, confluent.ErrNeverJoined) { // interrupted before its join completed: not a failure
		fmt.Fprintln(os.Stderr, "Run:", err)
		return 1
	}
	return 0
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
	c, ctx := adaptertest.StartProduced(t, crashTopic, 4, n, 150*time.Second)
	out := filepath.Join(t.TempDir(), "handled.txt")

	// Poll the group's commits: they must never go down.
	watch := adaptertest.WatchCommits(ctx, t, c, crashGroup, crashTopic, "")

	start := func(i int) (*exec.Cmd, *bufio.Reader) {
		return adaptertest.StartChild(t, envChild+"="+strconv.Itoa(i), envBrokers+"="+c.Addrs()[0],
			envOut+"="+out, envStrategy+"="+strat)
	}
	covAtStart := make([]adaptertest.Coverage, kills+1)
	for i := range kills {
		covAtStart[i] = adaptertest.ReadCoverage(ctx, t, c, crashGroup, crashTopic)
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
		if ok, _ := adaptertest.CommittedAtEnd(ctx, c, crashGroup, crashTopic); ok {
			t.Logf("kill %d came after everything was committed", i)
		}
	}
	covAtStart[kills] = adaptertest.ReadCoverage(ctx, t, c, crashGroup, crashTopic)
	last, lastOut := start(kills)
	if line, err := lastOut.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("last child did not start: %q %v", line, err)
	}
	adaptertest.WaitFor(ctx, t, "the last child to commit everything", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, crashGroup, crashTopic)
		return ok
	})
	_ = last.Process.Signal(os.Interrupt)
	if err := last.Wait(); err != nil {
		t.Fatalf("last child: %v", err)
	}
	rewinds := watch.Stop()

	ends, err := c.LogEnd(ctx, crashTopic)
	if err != nil {
		t.Fatal(err)
	}
	h := adaptertest.ReadHandled(t, out, covAtStart, ends)
	t.Logf("handled per child: %v; distinct %d of %d", h.PerChild, h.Distinct, n)
	h.Check(t, rewinds)
	if kills > 1 && h.PerChild[0]+h.PerChild[1] == 0 {
		t.Errorf("the first children handled nothing: the kills did not interrupt consumption")
	}
}
