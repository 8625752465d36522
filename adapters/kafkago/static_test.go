package kafkago_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
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
