package franz_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// envZombieChild switches TestMain into the zombie test's member (its
// value: "brokers,transactional id").
const envZombieChild = "INORDER_FRANZ_ZOMBIE_CHILD"

// zombieChild consumes txz-in exactly once, one output per input to
// txz-out, handlers of 5ms; it prints "handling" once, then "handled N"
// every 200 records, and exits 0 on SIGINT after a clean stop.
func zombieChild(arg string) int {
	brokers, id, _ := strings.Cut(arg, ",")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cons, err := franz.NewConsumer([]string{brokers}, "txz-group", []string{"txz-in"},
		append(fastOpts(log), franz.WithConcurrency(8), franz.WithCommitInterval(50*time.Millisecond),
			franz.WithTransactionalID(id))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var n atomic.Int64
	err = cons.Run(ctx, func(ctx context.Context, m *kgo.Record) error {
		switch k := n.Add(1); {
		case k == 1:
			fmt.Println("handling")
		case k%200 == 0:
			fmt.Println("handled", k)
		}
		time.Sleep(5 * time.Millisecond)
		return franz.Produce(ctx, outputOf("txz-out", m))
	})
	if err != nil && !errors.Is(err, franz.ErrNeverJoined) {
		fmt.Fprintln(os.Stderr, "Run:", err)
		return 1
	}
	return 0
}

// Issue 23: a member frozen (SIGSTOP) past its session timeout, its
// transactions possibly open, is resumed after its partitions moved to the
// other member: nothing it had not committed becomes visible twice, it
// recovers by itself (Run goes on: it handles again after a rejoin and
// stops cleanly), and the output topic, read committed, holds each input's
// output exactly once.
func TestTxnZombieFencedRecoversOutputsExactlyOnce(t *testing.T) {
	const n = 30000
	c, ctx := adaptertest.StartProduced(t, "txz-in", 4, n, 120*time.Second)
	if err := c.CreateTopic(ctx, "txz-out", 4); err != nil {
		t.Fatal(err)
	}
	start := func(id string) (interface{ Signal(os.Signal) error }, func() error, <-chan string) {
		cmd, stdout := adaptertest.StartChild(t, envZombieChild+"="+c.Addrs()[0]+","+id)
		ls := make(chan string, 64)
		go func() {
			defer close(ls)
			for {
				line, err := stdout.ReadString('\n')
				if err != nil {
					return
				}
				ls <- strings.TrimSpace(line)
			}
		}()
		return cmd.Process, cmd.Wait, ls
	}
	wait := func(ls <-chan string, pred func(string) bool, what string) {
		t.Helper()
		for {
			select {
			case l, ok := <-ls:
				if !ok {
					t.Fatalf("%s: the member exited", what)
				}
				if pred(l) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	zombie, waitZ, zl := start("txz-a")
	wait(zl, func(l string) bool { return l == "handling" }, "the first member to handle")
	other, waitO, ol := start("txz-b")
	wait(ol, func(l string) bool { return l == "handling" }, "the second member to handle")
	time.Sleep(300 * time.Millisecond)
	if err := zombie.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Past the session timeout (2s): the group moves its partitions.
	time.Sleep(5 * time.Second)
	before := 0
	for len(zl) > 0 {
		if l := <-zl; strings.HasPrefix(l, "handled ") { // written before the freeze
			before, _ = strconv.Atoi(strings.TrimPrefix(l, "handled "))
		}
	}
	if err := zombie.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Far more than the calls it had running: it fetched again.
	wait(zl, func(l string) bool {
		k, err := strconv.Atoi(strings.TrimPrefix(l, "handled "))
		return err == nil && k >= before+400
	}, "the resumed member to handle again")
	adaptertest.WaitFor(ctx, t, "everything committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, "txz-group", "txz-in")
		return ok
	})
	_ = zombie.Signal(os.Interrupt)
	_ = other.Signal(os.Interrupt)
	go func() {
		for range zl {
		}
	}()
	go func() {
		for range ol {
		}
	}()
	if err := waitZ(); err != nil {
		t.Errorf("resumed member: %v (want a clean stop: a long pause is not a crash)", err)
	}
	if err := waitO(); err != nil {
		t.Errorf("other member: %v", err)
	}
	ends, err := c.LogEnd(ctx, "txz-in")
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(ctx, t, c, "txz-out", ends)
}
