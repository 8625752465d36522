package confluent_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

const envStaticChild = "INORDER_CONFLUENT_STATIC_CHILD"

func init() {
	if os.Getenv(envStaticChild) != "" {
		os.Exit(adaptertest.StaticChild(newStatic))
	}
}

// newStatic is adaptertest.NewStatic for this adapter (librdkafka's
// default assignors: range first).
func newStatic(brokers []string, group, topic, id string, rec *adaptertest.Recorder) (func(context.Context) error, error) {
	cons, err := confluent.NewConsumer(brokers, group, []string{topic},
		append(fastOpts(slogDiscard()), confluent.WithInstanceID(id), confluent.WithSessionTimeout(adaptertest.StaticSession))...)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		return cons.Run(ctx, func(_ context.Context, m *kafka.Message) error {
			rec.Add(m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Value)
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
	adaptertest.CheckDuplicateInstanceID(t, newStatic, confluent.ErrFenced)
}

// Issue 22: a static member SIGKILLed and not restarted loses its
// partitions once its session times out.
func TestKilledStaticMemberPartitionsMoveAfterTheSession(t *testing.T) {
	adaptertest.CheckStaticKilled(t, newStatic, func(env ...string) (*exec.Cmd, *bufio.Reader) {
		return adaptertest.StartChild(t, append(env, envStaticChild+"=1")...)
	})
}

func TestWithInstanceIDRefusesAnEmptyIDAndGroupInstanceID(t *testing.T) {
	for name, opt := range map[string]confluent.Option{
		"InstanceID is empty":              confluent.WithInstanceID(""),
		"group.instance.id may not be set": confluent.WithConfigMap(kafka.ConfigMap{"group.instance.id": "x"}),
	} {
		_, err := confluent.NewConsumer([]string{"localhost:9092"}, "g", []string{"t"}, opt)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("got %v, want an error saying %q", err, name)
		}
	}
}
