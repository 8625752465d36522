package confluent_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// The batch crash test's child role: the ordering crash child with
// RunBatch, each batch's messages passed to the recorder one after the
// other (a SIGKILL lands in the middle of batches).
const (
	envBatchChild = "INORDER_CONFLUENT_BATCH_CHILD" // child index
	batchTopic    = "batch-crash"
	batchGroup    = "batch-crash-group"
)

func init() {
	idx := os.Getenv(envBatchChild)
	if idx == "" {
		return
	}
	os.Exit(adaptertest.OrderCrashChild(os.Getenv(envOut), idx, func(h adaptertest.HandleFunc) error {
		cons, err := confluent.NewConsumer([]string{os.Getenv(envBrokers)}, batchGroup, []string{batchTopic},
			append(append(fastOpts(slogDiscard()), confluent.WithConcurrency(8), confluent.WithWindow(2000),
				confluent.WithBatch(20, 2*time.Millisecond)),
				orderOpts(adaptertest.CrashChildOrdering())...)...)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		return cons.RunBatch(ctx, func(_ context.Context, ms []*kafka.Message) error {
			for _, m := range ms {
				h(m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Key)
			}
			return nil
		})
	}))
}

// Issue 20: consumed ByKey with RunBatch by child processes SIGKILLed in
// the middle of batches and restarted: the messages of a batch that did not
// return are redelivered (at least once), each key restarts from its
// commit point, per-key order holds within each process, nothing is lost.
func TestRunBatchAcrossCrashes(t *testing.T) {
	adaptertest.RunOrderingCrash(t, batchTopic, batchGroup, 3, func(i int, brokers, out, env string) (*exec.Cmd, *bufio.Reader) {
		return adaptertest.StartChild(t, envBatchChild+"="+strconv.Itoa(i), envBrokers+"="+brokers, envOut+"="+out, env)
	})
}
