package kafkago_test

import (
	"context"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// startMistake starts a kafka-go consumer as a mistake check asks (issue 21).
func startMistake(t *testing.T, mc adaptertest.MistakeConfig) func() error {
	opts := append(fastOpts(mc.Logger), kafkago.WithRequestTimeout(mc.RequestTimeout))
	if mc.DeadLetterTopic != "" {
		opts = append(opts, kafkago.WithDeadLetter(mc.DeadLetterTopic))
	}
	if mc.MeterProvider != nil {
		opts = append(opts, kafkago.WithMeterProvider(mc.MeterProvider))
	}
	cons, err := kafkago.NewConsumer(mc.Brokers, mc.Group, mc.Topics, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return runConsumer(t, cons, func(ctx context.Context, m kafka.Message) error {
		if mc.Handle == nil {
			return nil
		}
		return mc.Handle(ctx, int32(m.Partition), m.Offset, m.Value)
	})
}

func TestUnreachableBrokerIsExplainedOnceAndRunSaysItNeverJoined(t *testing.T) {
	adaptertest.CheckUnreachableBroker(t, startMistake, kafkago.ErrNeverJoined)
}

func TestMissingTopicIsNamedOnce(t *testing.T) {
	adaptertest.CheckMissingTopic(t, startMistake)
}

func TestInfoStoryAndTheUsersErrorType(t *testing.T) {
	adaptertest.CheckInfoStory(t, startMistake, kafkago.Permanent)
}
