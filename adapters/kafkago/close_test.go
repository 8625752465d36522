package kafkago_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
	"github.com/inorder/inorder/watermark/metadata"
)

// closeFromMany calls Close from n goroutines at once and checks that each
// returns nil, and that doneBy (what Run must have finished before Close
// returns; nil: nothing) holds when it does. Whether the goroutine running
// Run has received its result yet is not observable: Close returns once
// Run's last deferred step ran, just before Run itself returns.
func closeFromMany(t *testing.T, cons *kafkago.Consumer, n int, doneBy func() error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			err := cons.Close()
			if err == nil && doneBy != nil {
				err = doneBy()
			}
			errs <- err
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second): // hang guard only
		t.Fatal("Close did not return")
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// startRun runs cons.Run in a goroutine; the channel gets its error, and
// done is closed when it returned.
func startRun(cons *kafkago.Consumer, h func(context.Context, kafka.Message) error) (errc chan error, done chan struct{}) {
	errc, done = make(chan error, 1), make(chan struct{})
	go func() {
		errc <- cons.Run(context.Background(), h)
		close(done)
	}()
	return errc, done
}

// Issue 9: Close before Run makes Run return ErrClosed without joining;
// Close is idempotent.
func TestCloseBeforeRunIsFinal(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("t", 1))
	cons, err := kafkago.NewConsumer(c.Addrs(), "g", []string{"t"}, fastOpts(slogDiscard())...)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := cons.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
	}
	if err := cons.Run(context.Background(), func(context.Context, kafka.Message) error { return nil }); !errors.Is(err, kafkago.ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
}

// Issue 9: Close from several goroutines while Run is joining the group
// (its JoinGroup request reached the broker): every Close returns after
// Run, which returns nil; a later Run returns ErrClosed.
func TestCloseFromManyGoroutinesMidJoin(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("t", 2))
	for range 3 {
		group := adaptertest.NextGroup("join")
		joining := make(chan struct{})
		var once sync.Once
		c.Fake().ControlKey(int16(kmsg.JoinGroup), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			if kreq.(*kmsg.JoinGroupRequest).Group == group {
				once.Do(func() { close(joining) })
			} else {
				c.Fake().KeepControl()
			}
			return nil, nil, false
		})
		cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{"t"}, fastOpts(testLogger(t))...)
		if err != nil {
			t.Fatal(err)
		}
		errc, done := startRun(cons, func(context.Context, kafka.Message) error { return nil })
		select {
		case <-joining:
		case <-time.After(30 * time.Second): // hang guard only
			t.Fatal("no JoinGroup request")
		}
		closeFromMany(t, cons, 4, nil)
		<-done
		// Closed while its JoinGroup waits: Run never joined, and says so.
		if err := <-errc; err != nil && !errors.Is(err, kafkago.ErrNeverJoined) {
			t.Fatalf("Run = %v, want nil or ErrNeverJoined", err)
		}
		if err := cons.Run(context.Background(), func(context.Context, kafka.Message) error { return nil }); !errors.Is(err, kafkago.ErrClosed) {
			t.Fatalf("Run after Close = %v, want ErrClosed", err)
		}
	}
}

// Issue 9: Close while handlers run waits for them (drain), commits what
// they finished and leaves; Close from several goroutines.
func TestCloseMidWorkDrainsAndCommits(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "w", 2, 200, 60*time.Second)
	cons, err := kafkago.NewConsumer(c.Addrs(), "w-group", []string{"w"}, fastOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	started := make(chan struct{})
	var once sync.Once
	errc, done := startRun(cons, func(_ context.Context, m kafka.Message) error {
		if m.Partition == 0 && m.Offset == 50 {
			once.Do(func() { close(started) })
			time.Sleep(200 * time.Millisecond) // still running when Close is called
		}
		rec.add(m)
		return nil
	})
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("handler never reached offset 50")
	}
	// Close waits for Run's drain: the handler running during Close has
	// finished (and, checked below, been committed) when Close returns.
	closeFromMany(t, cons, 4, func() error {
		if rec.Seen()[adaptertest.PO{P: 0, O: 50}] == 0 {
			return errors.New("Close returned before the handler it had to wait for finished")
		}
		return nil
	})
	<-done
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v", err)
	}
	com, err := c.Committed(ctx, "w-group", "w")
	if err != nil {
		t.Fatal(err)
	}
	// The message handled during Close is committed: below the commit
	// point, or in the commit metadata's done set when an earlier message
	// was taken by a worker but not started before the revoke (it is then
	// not handled, and redelivered to the next owner).
	if cm := com[0]; cm.Offset <= 50 {
		done, err := metadata.Decode(cm.Metadata, cm.Offset)
		if err != nil || done == nil || !done.Contains(50) {
			t.Fatalf("committed %d on partition 0 (metadata %q: %v), want 50, the message handled during Close, covered", cm.Offset, cm.Metadata, err)
		}
	}
	for p, cm := range com {
		for o := range cm.Offset {
			if rec.Seen()[adaptertest.PO{P: p, O: o}] == 0 {
				t.Fatalf("committed %d on partition %d, but offset %d was not handled", cm.Offset, p, o)
			}
		}
	}
}

// Issue 9: a Run racing Close either runs and is stopped by it, or returns
// ErrClosed; it never outlives Close.
func TestRunRacingClose(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("t", 1))
	for range 20 {
		cons, err := kafkago.NewConsumer(c.Addrs(), adaptertest.NextGroup("race"), []string{"t"}, fastOpts(slogDiscard())...)
		if err != nil {
			t.Fatal(err)
		}
		errc, done := startRun(cons, func(context.Context, kafka.Message) error { return nil })
		if err := cons.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if err != nil && !errors.Is(err, kafkago.ErrClosed) && !errors.Is(err, kafkago.ErrNeverJoined) {
				t.Fatalf("Run = %v, want nil, ErrClosed or ErrNeverJoined", err)
			}
		case <-time.After(30 * time.Second): // hang guard only
			t.Fatal("Run did not return after Close")
		}
		<-done
	}
}
