package kafkago

import (
	"time"

	"github.com/segmentio/kafka-go"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// Offset is one partition's commit as the commit hook sees it.
type Offset = engine.Offset

// WithGenerationHook calls f at the start of every generation with what this
// member owns in it. Tests only.
func WithGenerationHook(f func(member string, generation int32, owned []TopicPartition)) Option {
	return func(o *engine.Options) { own(o, "WithGenerationHook").onGeneration = f }
}

// WithCommitHook calls f after every commit request with its offsets and
// per-partition results (errs nil if the request failed). Tests only.
func WithCommitHook(f func(member string, generation int32, offs []Offset, errs []error)) Option {
	return func(o *engine.Options) { own(o, "WithCommitHook").onCommit = f }
}

// WithBackoffHook calls f with every retry wait, before waiting. Tests only.
func WithBackoffHook(f func(time.Duration)) Option {
	return func(o *engine.Options) { own(o, "WithBackoffHook").onBackoff = f }
}

// WithFetchHook calls f with every successful fetch response, before its
// records are delivered; f may change the response. Tests only.
func WithFetchHook(f func(tp TopicPartition, offset int64, part *fetchAPI.ResponsePartition)) Option {
	return func(o *engine.Options) { own(o, "WithFetchHook").onFetch = f }
}

// WithGroupBalancers sets kafka-go's group balancers. Tests only.
func WithGroupBalancers(b ...kafka.GroupBalancer) Option {
	return func(o *engine.Options) { own(o, "WithGroupBalancers").balancers = b }
}

// BackoffWaits returns the first n waits of the retry backoff starting at
// first, without waiting.
func BackoffWaits(first time.Duration, n int) []time.Duration {
	b := engine.NewRetryBackoff(first)
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = b.Next()
	}
	return out
}
