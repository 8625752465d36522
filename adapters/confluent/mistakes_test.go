package confluent_test

import (
	"context"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// startMistake starts a confluent consumer as a mistake check asks (issue 21).
func startMistake(t *testing.T, mc adaptertest.MistakeConfig) func() error {
	opts := append(fastOpts(mc.Logger), confluent.WithRequestTimeout(mc.RequestTimeout))
	if mc.DeadLetterTopic != "" {
		opts = append(opts, confluent.WithDeadLetter(mc.DeadLetterTopic))
	}
	if mc.MeterProvider != nil {
		opts = append(opts, confluent.WithMeterProvider(mc.MeterProvider))
	}
	cons, err := confluent.NewConsumer(mc.Brokers, mc.Group, mc.Topics, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return runConsumer(t, cons, func(ctx context.Context, m *kafka.Message) error {
		if mc.Handle == nil {
			return nil
		}
		return mc.Handle(ctx, m.TopicPartition.Partition, int64(m.TopicPartition.Offset), m.Value)
	})
}

func TestUnreachableBrokerIsExplainedOnceAndRunSaysItNeverJoined(t *testing.T) {
	adaptertest.CheckUnreachableBroker(t, startMistake, confluent.ErrNeverJoined)
}

func TestMissingTopicIsNamedOnce(t *testing.T) {
	adaptertest.CheckMissingTopic(t, startMistake)
}

func TestInfoStoryAndTheUsersErrorType(t *testing.T) {
	adaptertest.CheckInfoStory(t, startMistake, confluent.Permanent)
}
