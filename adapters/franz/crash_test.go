package franz_test

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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// The crash test re-executes the test binary as the consumer process; these
// environment variables switch TestMain into that role.
const (
	envChild   = "INORDER_FRANZ_CRASH_CHILD" // child index
	envBrokers = "INORDER_FRANZ_BROKERS"
	envOut     = "INORDER_FRANZ_OUT"
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
	if arg := os.Getenv(envZombieChild); arg != "" {
		os.Exit(zombieChild(arg))
	}
	os.Exit(m.Run())
}

// crashChild consumes crashTopic and appends "child partition offset" to the
// output file when each handler finishes, before the record is acked. It
// prints "handling" once its first handler ran (its first join completed:
// see the embedded broker's ghost-member bug in DESIGN.md) and exits 0 on
// SIGINT after a clean shutdown.
func crashChild(idx string) int {
	hl, err := adaptertest.OpenHandledLog(os.Getenv(envOut), idx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer hl.Close()
	cons, err := franz.NewConsumer([]string{os.Getenv(envBrokers)}, crashGroup, []string{crashTopic},
		append(fastOpts(slogDiscard()), franz.WithConcurrency(16), franz.WithWindow(5000))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Println("ready")
	var first sync.Once
	err = cons.Run(ctx, func(_ context.Context, m *kgo.Record) error {
		first.Do(func() { fmt.Println("handling") })
		d := time.Duration(rand.IntN(1000)) * time.Microsecond
		if rand.IntN(200) == 0 {
			d = 200 * time.Millisecond // a slow one holds the commit point
		}
		time.Sleep(d)
		return hl.Write(m.Partition, m.Offset)
	})
	if err != nil && !errors.Is(err, franz.ErrNeverJoined) { // interrupted before its join completed: not a failure
		fmt.Fprintln(os.Stderr, "Run:", err)
		return 1
	}
	return 0
}

// Issue: the consumer runs in a child process that is SIGKILLed at random
// moments, several times, and restarted: every produced record is handled
// at least once, committed offsets never decrease, and with metadata no
// record acked before a commit is handled again.
func TestCrashRestartAtLeastOnceNoRewindNoRedeliveryOfCommitted(t *testing.T) {
	const (
		n     = 30000
		kills = 5
	)
	c, ctx := adaptertest.StartProduced(t, crashTopic, 4, n, 150*time.Second)
	out := filepath.Join(t.TempDir(), "handled.txt")
	watch := adaptertest.WatchCommits(ctx, t, c, crashGroup, crashTopic, "")

	start := func(i int) (*exec.Cmd, *bufio.Reader) {
		return adaptertest.StartChild(t, envChild+"="+strconv.Itoa(i), envBrokers+"="+c.Addrs()[0], envOut+"="+out)
	}
	covAtStart := make([]adaptertest.Coverage, kills+1)
	for i := range kills {
		covAtStart[i] = adaptertest.ReadCoverage(ctx, t, c, crashGroup, crashTopic)
		cmd, stdout := start(i)
		// Kill only a member that has handled a record (its first join is
		// complete), then at a random moment.
		for _, want := range []string{"ready\n", "handling\n"} {
			if line, err := stdout.ReadString('\n'); err != nil || line != want {
				t.Fatalf("child %d: %q %v, want %q", i, line, err, want)
			}
		}
		time.Sleep(time.Duration(100+rand.IntN(1000)) * time.Millisecond)
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
}
