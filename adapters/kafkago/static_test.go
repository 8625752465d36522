package kafkago_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

const envStaticChild = "INORDER_KAFKAGO_STATIC_CHILD"

func init() {
	if os.Getenv(envStaticChild) != "" {
		os.Exit(adaptertest.StaticChild(newStatic))
	}
}

// newStatic is adaptertest.NewStatic for this adapter (range, the first of
// the default balancers).
func newStatic(brokers []string, group, topic, id string, rec *adaptertest.Recorder) (func(context.Context) error, error) {
	cons, err := kafkago.NewConsumer(brokers, group, []string{topic},
		append(fastOpts(slogDiscard()), kafkago.WithInstanceID(id), kafkago.WithSessionTimeout(adaptertest.StaticSession))...)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		return cons.Run(ctx, func(_ context.Context, m kafka.Message) error {
			rec.Add(int32(m.Partition), m.Offset, m.Value)
			return nil
		})
	}, nil
}

// Issue 22: a static member restarted within its session gets its
// partitions back without a rebalance; its Run's end committed and did not
// leave.
func TestStaticMemberRejoinsWithoutARebalance(t *testing.T) {
	adaptertest.CheckStaticRejoin(t, newStatic)
}

// Issue 22: a second member with the same instance id fences the first,
// whose Run ends with ErrFenced naming the id.
func TestDuplicateInstanceIDIsFenced(t *testing.T) {
	adaptertest.CheckDuplicateInstanceID(t, newStatic, kafkago.ErrFenced)
}

// Issue 22: a static member SIGKILLed and not restarted loses its
// partitions once its session times out.
func TestKilledStaticMemberPartitionsMoveAfterTheSession(t *testing.T) {
	adaptertest.CheckStaticKilled(t, newStatic, func(env ...string) (*exec.Cmd, *bufio.Reader) {
		return adaptertest.StartChild(t, append(env, envStaticChild+"=1")...)
	})
}

func TestWithInstanceIDRefusesAnEmptyID(t *testing.T) {
	_, err := kafkago.NewConsumer([]string{"localhost:9092"}, "g", []string{"t"}, kafkago.WithInstanceID(""))
	if err == nil || !strings.Contains(err.Error(), "InstanceID is empty") {
		t.Errorf("got %v, want an error saying \"InstanceID is empty\"", err)
	}
}

// Issue 22: the group's leader (the member that joined first: the embedded
// broker keeps it as leader while it is a member) restarted as a static
// member gets its partitions back without a rebalance. At JoinGroup v7 it
// is told it leads and syncs an assignment, which the Stable group ignores.
func TestStaticLeaderRejoinsWithoutARebalance(t *testing.T) {
	const topic = "static-leader"
	c, ctx := adaptertest.StartProduced(t, topic, 4, 400, 60*time.Second)
	group := adaptertest.NextGroup("static-leader")
	recA, recB, recA2 := adaptertest.NewRecorder(), adaptertest.NewRecorder(), adaptertest.NewRecorder()
	goStatic := func(id string, rec *adaptertest.Recorder) func() error {
		run, err := newStatic(c.Addrs(), group, topic, id, rec)
		if err != nil {
			t.Fatal(err)
		}
		return adaptertest.Run(t, run)
	}
	memberOf := func(g *kfake.GroupInfo, id string) (kfake.GroupMember, bool) {
		for _, m := range g.Members {
			if m.InstanceID != nil && *m.InstanceID == id {
				return m, true
			}
		}
		return kfake.GroupMember{}, false
	}
	stopA := goStatic("a", recA)
	adaptertest.WaitFor(ctx, t, "a to handle a message", func() bool { return recA.Count() > 0 })
	stopB := goStatic("b", recB)
	adaptertest.WaitFor(ctx, t, "a and b each owning partitions", func() bool {
		g := c.Fake().GroupInfo(group)
		if g == nil || g.State != "Stable" || len(g.Members) != 2 {
			return false
		}
		ma, okA := memberOf(g, "a")
		mb, okB := memberOf(g, "b")
		return okA && okB && ma.NumAssigned() > 0 && mb.NumAssigned() > 0
	})
	g0 := c.Fake().GroupInfo(group)
	ma, _ := memberOf(g0, "a")
	if err := stopA(); err != nil {
		t.Fatalf("a's Run: %v", err)
	}
	if g := c.Fake().GroupInfo(group); len(g.Members) != 2 || g.Epoch != g0.Epoch {
		t.Fatalf("after a's Run returned: %d members, generation %d; want a still a member in generation %d", len(g.Members), g.Epoch, g0.Epoch)
	}
	stopA2 := goStatic("a", recA2)
	if _, err := c.Produce(ctx, topic, 400, kafkatest.FirstIndex(400)); err != nil {
		t.Fatal(err)
	}
	adaptertest.WaitFor(ctx, t, "every message handled and committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		all := map[adaptertest.PO]bool{}
		for _, r := range []*adaptertest.Recorder{recA, recB, recA2} {
			for po := range r.Seen() {
				all[po] = true
			}
		}
		return ok && len(all) == 800
	})
	g := c.Fake().GroupInfo(group)
	ma2, ok := memberOf(g, "a")
	switch {
	case !ok || len(g.Members) != 2:
		t.Errorf("after the restart: members %+v, want a and b", g.Members)
	case g.Epoch != g0.Epoch:
		t.Errorf("generation %d after a's restart, was %d: the static rejoin of the leader rebalanced", g.Epoch, g0.Epoch)
	case sortedAssignment(ma.Assignment) != sortedAssignment(ma2.Assignment):
		t.Errorf("a owned %v before its restart, %v after", ma.Assignment, ma2.Assignment)
	case recA2.Count() == 0:
		t.Errorf("the restarted a handled nothing")
	}
	for _, stop := range []func() error{stopA2, stopB} {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}
}

// sortedAssignment is an assignment as text, partitions sorted.
func sortedAssignment(a map[string][]int32) string {
	out := map[string][]int32{}
	for t, ps := range a {
		out[t] = slices.Sorted(slices.Values(ps))
	}
	return fmt.Sprint(out) // fmt sorts map keys
}
