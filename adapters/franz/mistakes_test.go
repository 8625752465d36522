package franz_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// startMistake starts a franz consumer as a mistake check asks (issue 21).
func startMistake(t *testing.T, mc adaptertest.MistakeConfig) func() error {
	opts := append(fastOpts(mc.Logger), franz.WithRequestTimeout(mc.RequestTimeout))
	if mc.DeadLetterTopic != "" {
		opts = append(opts, franz.WithDeadLetter(mc.DeadLetterTopic))
	}
	if mc.MeterProvider != nil {
		opts = append(opts, franz.WithMeterProvider(mc.MeterProvider))
	}
	cons, err := franz.NewConsumer(mc.Brokers, mc.Group, mc.Topics, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return runConsumer(t, cons, func(ctx context.Context, r *kgo.Record) error {
		if mc.Handle == nil {
			return nil
		}
		return mc.Handle(ctx, r.Partition, r.Offset, r.Value)
	})
}

func TestUnreachableBrokerIsExplainedOnceAndRunSaysItNeverJoined(t *testing.T) {
	adaptertest.CheckUnreachableBroker(t, startMistake, franz.ErrNeverJoined)
}

func TestMissingTopicIsNamedOnce(t *testing.T) {
	adaptertest.CheckMissingTopic(t, startMistake)
}

func TestInfoStoryAndTheUsersErrorType(t *testing.T) {
	adaptertest.CheckInfoStory(t, startMistake, franz.Permanent)
}
