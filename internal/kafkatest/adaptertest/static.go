package adaptertest

// The static membership checks (WithInstanceID, KIP-345), written once for
// every adapter that has it: a restarted static member gets its partitions
// back without a rebalance, its Run's end drains and commits without
// leaving, a duplicate instance id fences the older member, and a static
// member SIGKILLed and not restarted has its partitions moved once its
// session times out.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/internal/kafkatest"
)

// StaticSession is the session timeout of the static members of these
// checks: long enough for an in-process restart, short enough to wait out
// once.
const StaticSession = 6 * time.Second

// NewStatic returns the Run of a new consumer of topic in group on brokers
// with instance id id, the range assignor, the adapter's short test timeouts
// but a session timeout of StaticSession, recording each handled message in
// rec (an error: the consumer could not be created).
type NewStatic func(brokers []string, group, topic, id string, rec *Recorder) (run func(context.Context) error, err error)

// start is newStatic's Run in a goroutine.
func start(t testing.TB, newStatic NewStatic, c *kafkatest.Cluster, group, topic, id string, rec *Recorder) *running {
	t.Helper()
	run, err := newStatic(c.Addrs(), group, topic, id, rec)
	if err != nil {
		t.Fatal(err)
	}
	return goRun(t, run)
}

// running is a Run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func goRun(t testing.TB, run func(context.Context) error) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx) }()
	t.Cleanup(func() { _ = r.stop() })
	return r
}

// stop cancels the Run and returns its error (30s hang guard); idempotent.
func (r *running) stop() error {
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(30 * time.Second):
		return errors.New("Run did not return 30s after cancel")
	}
}

// member returns the member of g with instance id id.
func member(g *kfake.GroupInfo, id string) (kfake.GroupMember, bool) {
	if g == nil {
		return kfake.GroupMember{}, false
	}
	for _, m := range g.Members {
		if m.InstanceID != nil && *m.InstanceID == id {
			return m, true
		}
	}
	return kfake.GroupMember{}, false
}

// stableWith reports whether group is Stable with exactly the members ids,
// each owning a partition.
func stableWith(c *kafkatest.Cluster, group string, ids ...string) bool {
	g := c.Fake().GroupInfo(group)
	if g == nil || g.State != "Stable" || len(g.Members) != len(ids) {
		return false
	}
	for _, id := range ids {
		if m, ok := member(g, id); !ok || m.NumAssigned() == 0 {
			return false
		}
	}
	return true
}

// CheckStaticRejoin checks a static member's restart. Members "a" and "b"
// share 4 partitions; "b" stops: its Run has committed past every message
// it handled, and it is still in the group (it did not leave). A new
// consumer with id "b" takes its place: the group's generation is the same
// as before (no rebalance), "b" owns the same partitions, and every message
// (also those produced after the restart) is handled and committed.
func CheckStaticRejoin(t *testing.T, newStatic NewStatic) {
	const topic = "static"
	c, ctx := StartProduced(t, topic, 4, 400, 90*time.Second)
	group := NextGroup("static")
	recA, recB, recB2 := NewRecorder(), NewRecorder(), NewRecorder()
	a := start(t, newStatic, c, group, topic, "a", recA)
	WaitFor(ctx, t, "a to handle a message", func() bool { return recA.Count() > 0 })
	b := start(t, newStatic, c, group, topic, "b", recB)
	WaitFor(ctx, t, "a and b each owning partitions", func() bool { return stableWith(c, group, "a", "b") })
	if _, err := c.Produce(ctx, topic, 400, kafkatest.FirstIndex(400)); err != nil {
		t.Fatal(err)
	}
	WaitFor(ctx, t, "b to handle a message", func() bool { return recB.Count() > 0 })
	g0 := c.Fake().GroupInfo(group)
	mb, _ := member(g0, "b")
	if err := b.stop(); err != nil {
		t.Fatalf("b's Run: %v", err)
	}
	// Drained and committed: every message b handled is below its commit.
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	for po := range recB.Seen() {
		if com[po.P].Offset <= po.O {
			t.Errorf("b handled %d/%d, but its partition is committed at %d after b's Run returned", po.P, po.O, com[po.P].Offset)
		}
	}
	if g := c.Fake().GroupInfo(group); g == nil || len(g.Members) != 2 || g.Epoch != g0.Epoch {
		t.Fatalf("after b's Run returned: group %+v, want b still a member in generation %d", g, g0.Epoch)
	}

	b2 := start(t, newStatic, c, group, topic, "b", recB2)
	if _, err := c.Produce(ctx, topic, 400, kafkatest.FirstIndex(800)); err != nil {
		t.Fatal(err)
	}
	WaitFor(ctx, t, "every message handled and committed", func() bool {
		ok, _ := CommittedAtEnd(ctx, c, group, topic)
		return ok && distinct(recA, recB, recB2) == 1200
	})
	g := c.Fake().GroupInfo(group)
	mb2, ok := member(g, "b")
	switch {
	case !ok || len(g.Members) != 2:
		t.Errorf("after the restart: members %+v, want a and b", g.Members)
	case g.Epoch != g0.Epoch:
		t.Errorf("generation %d after b's restart, was %d: the static rejoin rebalanced", g.Epoch, g0.Epoch)
	case !assignedEqual(mb.Assignment, mb2.Assignment):
		t.Errorf("b owned %v before its restart, %v after", mb.Assignment, mb2.Assignment)
	case recB2.Count() == 0:
		t.Errorf("the restarted b handled nothing")
	}
	for _, r := range []*running{b2, a} {
		if err := r.stop(); err != nil {
			t.Error(err)
		}
	}
}

func assignedEqual(x, y map[string][]int32) bool {
	if len(x) != len(y) {
		return false
	}
	for t, ps := range x {
		if !slices.Equal(slices.Sorted(slices.Values(ps)), slices.Sorted(slices.Values(y[t]))) {
			return false
		}
	}
	return true
}

func distinct(recs ...*Recorder) int {
	all := map[PO]bool{}
	for _, r := range recs {
		for po := range r.Seen() {
			all[po] = true
		}
	}
	return len(all)
}

// CheckDuplicateInstanceID checks that a second consumer with a running
// member's instance id fences the first: the first Run ends by itself with
// an error wrapping fenced and naming the id, having sent no commit after
// its Run returned, and the second consumes everything to the log end.
func CheckDuplicateInstanceID(t *testing.T, newStatic NewStatic, fenced error) {
	const topic = "static-dup"
	c, ctx := StartProduced(t, topic, 4, 400, 90*time.Second)
	group := NextGroup("static-dup")
	var (
		mu      sync.Mutex
		firstID string
		after   int // commits of the first member after its Run returned
		ended   bool
	)
	c.Fake().ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		mu.Lock()
		if ended && kreq.(*kmsg.OffsetCommitRequest).MemberID == firstID {
			after++
		}
		mu.Unlock()
		return nil, nil, false
	})
	rec1, rec2 := NewRecorder(), NewRecorder()
	first := start(t, newStatic, c, group, topic, "dup", rec1)
	WaitFor(ctx, t, "the first member to handle a message", func() bool { return rec1.Count() > 0 })
	m, ok := member(c.Fake().GroupInfo(group), "dup")
	if !ok {
		t.Fatal("the first member is not in the group")
	}
	mu.Lock()
	firstID = m.MemberID
	mu.Unlock()

	second := start(t, newStatic, c, group, topic, "dup", rec2)
	var err error
	select {
	case err = <-first.done:
		close(first.done)
	case <-ctx.Done():
		t.Fatal("the first member's Run did not end after a second member took its instance id")
	}
	mu.Lock()
	ended = true
	mu.Unlock()
	if !errors.Is(err, fenced) || !strings.Contains(err.Error(), `"dup"`) {
		t.Errorf("the fenced Run returned %v, want an error wrapping %v that names \"dup\"", err, fenced)
	}
	if _, err := c.Produce(ctx, topic, 400, kafkatest.FirstIndex(400)); err != nil {
		t.Fatal(err)
	}
	WaitFor(ctx, t, "the second member to handle and commit everything", func() bool {
		ok, _ := CommittedAtEnd(ctx, c, group, topic)
		return ok && distinct(rec1, rec2) == 800
	})
	if err := second.stop(); err != nil {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if after != 0 {
		t.Errorf("the fenced member sent %d commits after its Run returned", after)
	}
}

// Environment of a static child (StaticChild).
const (
	envStaticBrokers = "INORDER_STATIC_BROKERS"
	envStaticGroup   = "INORDER_STATIC_GROUP"
)

// StaticChild is the body of a static member child process, for an
// adapter's test init when envVar is set: it runs newStatic's consumer
// (instance id "killed") on the cluster and group of the environment,
// prints "handling" after its first handled message and returns an exit
// code once SIGINT stopped it. The test SIGKILLs it.
func StaticChild(newStatic NewStatic) int {
	rec := NewRecorder()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	run, err := newStatic([]string{os.Getenv(envStaticBrokers)}, os.Getenv(envStaticGroup), "static-kill", "killed", rec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go func() {
		for rec.Count() == 0 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Println("handling")
	}()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// CheckStaticKilled checks that the partitions of a static member that is
// SIGKILLed and not restarted move to the other member once its session
// timed out: right after the kill it is still in the group, then the other
// member ("a", in this process) owns every partition and commits every
// message. child starts the test binary as a StaticChild with env.
func CheckStaticKilled(t *testing.T, newStatic NewStatic, child func(env ...string) (*exec.Cmd, *bufio.Reader)) {
	const topic = "static-kill"
	c, ctx := StartProduced(t, topic, 4, 400, 90*time.Second)
	group := NextGroup("static-kill")
	recA := NewRecorder()
	a := start(t, newStatic, c, group, topic, "a", recA)
	WaitFor(ctx, t, "a to handle a message", func() bool { return recA.Count() > 0 })
	cmd, out := child(envStaticBrokers+"="+c.Addrs()[0], envStaticGroup+"="+group)
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	WaitFor(ctx, t, "a and the child each owning partitions", func() bool { return stableWith(c, group, "a", "killed") })
	if _, err := c.Produce(ctx, topic, 400, kafkatest.FirstIndex(400)); err != nil {
		t.Fatal(err)
	}
	// Killed only once it handled a message: its first join is complete
	// (see the embedded broker's ghost members in DESIGN.md).
	line := make(chan string, 1)
	go func() { s, _ := out.ReadString('\n'); line <- s }()
	select {
	case s := <-line:
		if s != "handling\n" {
			t.Fatalf("child: %q, want \"handling\"", s)
		}
	case <-ctx.Done():
		t.Fatal("timed out waiting for the child to handle a message")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, ok := member(c.Fake().GroupInfo(group), "killed"); !ok {
		t.Errorf("the killed static member left the group at once; it should stay until its session (%v) times out", StaticSession)
	}
	WaitFor(ctx, t, "a to own every partition", func() bool {
		g := c.Fake().GroupInfo(group)
		m, ok := member(g, "a")
		return ok && len(g.Members) == 1 && m.NumAssigned() == 4
	})
	if _, err := c.Produce(ctx, topic, 400, kafkatest.FirstIndex(800)); err != nil {
		t.Fatal(err)
	}
	WaitFor(ctx, t, "a to commit every message", func() bool {
		ok, _ := CommittedAtEnd(ctx, c, group, topic)
		return ok
	})
	if err := a.stop(); err != nil {
		t.Error(err)
	}
}
