// Package naive is the churn member for today's common practice, the
// baseline the adapters are compared with: a kafka-go Reader with a GroupID
// and worker goroutines, each committing (CommitMessages) the message it
// finished. See package churn.
package naive

import (
	"context"
	"log/slog"
	"sync"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// Consume is a churn.Consume: a kafka-go Reader in group s.Group (s's
// timeouts unless s.Defaults; synchronous commits) feeding s.Concurrency
// workers; each worker handles a message and commits it. On ctx's end it
// stops fetching, lets the workers finish and commit what they hold, and
// closes the Reader (leaving the group). Commit errors are logged and
// ignored, as such code usually does. s.Protocol is ignored (eager).
func Consume(ctx context.Context, s churn.MemberSpec, handle churn.Handle, log *slog.Logger) error {
	rc := kafka.ReaderConfig{
		Brokers:     s.Brokers,
		GroupID:     s.Group,
		Topic:       s.Topic,
		StartOffset: kafka.FirstOffset,
	}
	if !s.Defaults {
		rc.SessionTimeout = s.SessionTimeout
		rc.RebalanceTimeout = s.RebalanceTimeout
		rc.HeartbeatInterval = s.HeartbeatInterval
	}
	r := kafka.NewReader(rc)
	msgs := make(chan kafka.Message)
	var wg sync.WaitGroup
	for range s.Concurrency {
		wg.Go(func() {
			for m := range msgs {
				if err := handle(context.Background(), int32(m.Partition), m.Offset); err != nil {
					log.Error("handle", "err", err)
					continue
				}
				if err := r.CommitMessages(context.Background(), m); err != nil {
					log.Warn("commit", "partition", m.Partition, "offset", m.Offset, "err", err)
				}
			}
		})
	}
	var err error
	for {
		m, ferr := r.FetchMessage(ctx)
		if ferr != nil {
			if ctx.Err() == nil {
				err = ferr
			}
			break
		}
		msgs <- m
	}
	close(msgs)
	wg.Wait()
	if cerr := r.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}
