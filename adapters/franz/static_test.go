package franz_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

const envStaticChild = "INORDER_FRANZ_STATIC_CHILD"

func init() {
	if os.Getenv(envStaticChild) != "" {
		os.Exit(adaptertest.StaticChild(newStatic))
	}
}

// newStatic is adaptertest.NewStatic for this adapter: range (eager), so
// that a restarted member's join carries the same metadata as its first.
func newStatic(brokers []string, group, topic, id string, rec *adaptertest.Recorder) (func(context.Context) error, error) {
	cons, err := franz.NewConsumer(brokers, group, []string{topic},
		append(fastOpts(slogDiscard()), franz.WithInstanceID(id), franz.WithSessionTimeout(adaptertest.StaticSession),
			franz.WithClientOptions(kgo.Balancers(kgo.RangeBalancer())))...)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		return cons.Run(ctx, func(_ context.Context, r *kgo.Record) error {
			rec.Add(r.Partition, r.Offset, r.Value)
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
	adaptertest.CheckDuplicateInstanceID(t, newStatic, franz.ErrFenced)
}

// Issue 22: a static member SIGKILLed and not restarted loses its
// partitions once its session times out.
func TestKilledStaticMemberPartitionsMoveAfterTheSession(t *testing.T) {
	adaptertest.CheckStaticKilled(t, newStatic, func(env ...string) (*exec.Cmd, *bufio.Reader) {
		return adaptertest.StartChild(t, append(env, envStaticChild+"=1")...)
	})
}

func TestWithInstanceIDRefusesAnEmptyIDAndKgoInstanceID(t *testing.T) {
	for name, opt := range map[string]franz.Option{
		"InstanceID is empty":                  franz.WithInstanceID(""),
		"kgo option InstanceID may not be set": franz.WithClientOptions(kgo.InstanceID("x")),
	} {
		_, err := franz.NewConsumer([]string{"localhost:9092"}, "g", []string{"t"}, opt)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("got %v, want an error saying %q", err, name)
		}
	}
}
