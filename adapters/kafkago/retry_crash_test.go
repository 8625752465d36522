package kafkago_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// The dead-letter crash test re-executes the test binary as the consumer
// process, like the crash test; these environment variables switch it
// into that role (from init, so that TestMain in crash_test.go stays as
// it is).
const (
	envDLChild   = "INORDER_KAFKAGO_DL_CRASH_CHILD" // child index
	envDLBrokers = "INORDER_KAFKAGO_DL_BROKERS"
	envDLOut     = "INORDER_KAFKAGO_DL_OUT"
)

const (
	dlCrashTopic, dlCrashDLQ, dlCrashGroup = "dlcrash", "dlcrash-dlt", "dlcrash-group"
	dlCrashAttempts                        = 2
)

func init() {
	if idx := os.Getenv(envDLChild); idx != "" {
		os.Exit(dlCrashChild(idx))
	}
}

// dlCrashKind: 5% poison, the rest good.
func dlCrashKind(i int) adaptertest.RetryKind {
	if i%20 == 7 {
		return adaptertest.Poison
	}
	return adaptertest.Good
}

// dlCrashChild consumes dlCrashTopic ByKey, retrying and dead-lettering
// the poison messages to dlCrashDLQ, and appends "child partition offset"
// to the output file at every handler call (poison ones included, before
// the handler returns). It exits 0 on SIGINT after a clean shutdown.
func dlCrashChild(idx string) int {
	hl, err := adaptertest.OpenHandledLog(os.Getenv(envDLOut), idx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer hl.Close()
	cons, err := kafkago.NewConsumer([]string{os.Getenv(envDLBrokers)}, dlCrashGroup, []string{dlCrashTopic},
		append(fastOpts(slogDiscard()), kafkago.WithConcurrency(16), kafkago.WithOrdering(kafkago.ByKey),
			kafkago.WithRetry(kafkago.Retry{MaxAttempts: dlCrashAttempts, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}),
			kafkago.WithDeadLetter(dlCrashDLQ))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Println("ready") // the parent may interrupt us from now on
	err = cons.Run(ctx, func(_ context.Context, m kafka.Message) error {
		time.Sleep(time.Duration(rand.IntN(1000)) * time.Microsecond)
		if err := hl.Write(int32(m.Partition), m.Offset); err != nil {
			return err
		}
		if adaptertest.RetryKind(m.Value[0]) == adaptertest.Poison {
			return adaptertest.PoisonError(int32(m.Partition), m.Offset)
		}
		return nil
	})
	if err != nil && !errors.Is(err, kafkago.ErrNeverJoined) { // interrupted before its join completed: not a failure
		fmt.Fprintln(os.Stderr, "Run:", err)
		return 1
	}
	return 0
}

// Issue: the consumer, dead-lettering 5% of the messages, runs in a child
// process that is SIGKILLed at random moments and restarted: every message
// is handled at least once, every poison message is in the dead-letter
// topic at least once (with its headers), committed offsets never
// decrease, no message a commit covered is handled again, and a clean last
// run commits everything.
func TestRetryDeadLetterCrashRestartLosesNone(t *testing.T) {
	const (
		n     = 20000
		kills = 4
	)
	c := kafkatest.Start(t, kafkatest.WithTopic(dlCrashTopic, 2), kafkatest.WithTopic(dlCrashDLQ, 2))
	ctx := adaptertest.Timeout(t, 120*time.Second)
	msgs := adaptertest.ProduceRetryTopic(ctx, t, c, dlCrashTopic, n, 47, dlCrashKind)
	out := filepath.Join(t.TempDir(), "handled.txt")
	watch := adaptertest.WatchCommits(ctx, t, c, dlCrashGroup, dlCrashTopic, "")
	env := func(i int) []string {
		return []string{envDLChild + "=" + strconv.Itoa(i), envDLBrokers + "=" + c.Addrs()[0], envDLOut + "=" + out}
	}
	covAtStart := make([]adaptertest.Coverage, kills+1)
	for i := range kills {
		covAtStart[i] = adaptertest.ReadCoverage(ctx, t, c, dlCrashGroup, dlCrashTopic)
		cmd, _ := adaptertest.StartChild(t, env(i)...)
		// A restarted child first waits for the dead member's session to
		// expire (1.5s) before it gets partitions.
		delay := time.Duration(300+rand.IntN(700)) * time.Millisecond
		if i > 0 {
			delay += 1500 * time.Millisecond
		}
		time.Sleep(delay)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if ok, _ := adaptertest.CommittedAtEnd(ctx, c, dlCrashGroup, dlCrashTopic); ok {
			t.Logf("kill %d came after everything was committed", i)
		}
	}
	covAtStart[kills] = adaptertest.ReadCoverage(ctx, t, c, dlCrashGroup, dlCrashTopic)
	last, lastOut := adaptertest.StartChild(t, env(kills)...)
	if line, err := lastOut.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("last child did not start: %q %v", line, err)
	}
	adaptertest.WaitFor(ctx, t, "the last child to commit everything", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, dlCrashGroup, dlCrashTopic)
		return ok
	})
	_ = last.Process.Signal(os.Interrupt)
	if err := last.Wait(); err != nil {
		t.Fatalf("last child: %v", err)
	}
	rewinds := watch.Stop()
	ends, err := c.LogEnd(ctx, dlCrashTopic)
	if err != nil {
		t.Fatal(err)
	}
	h := adaptertest.ReadHandled(t, out, covAtStart, ends)
	t.Logf("handler calls per child: %v; distinct %d of %d", h.PerChild, h.Distinct, n)
	h.Check(t, rewinds)
	recs := adaptertest.CheckRetryDeadLetters(ctx, t, c, dlCrashDLQ, dlCrashTopic, dlCrashGroup, msgs, dlCrashAttempts)
	t.Logf("%d dead-letter records for %d poison messages", recs, adaptertest.Count(msgs, adaptertest.Poison))
}
