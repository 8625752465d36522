package main

// This file holds the rows of the table: each peer used the way its README
// shows, and this module's three adapters at their defaults. Every row is a
// churn.Consume, so that the throughput runs and the crash loop run the
// same code.

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest/churn"
	"github.com/inorder/inorder/internal/kafkatest/churn/cfmember"
	"github.com/inorder/inorder/internal/kafkatest/churn/frmember"
	"github.com/inorder/inorder/internal/kafkatest/churn/kgmember"
)

// row is one consumer of the table.
type row struct {
	name    string
	ours    bool // one of this module's adapters
	consume churn.Consume
	// inFlight says how many handler calls the row can have running at
	// once, for concurrency c and p partitions.
	inFlight func(c, p int) string
}

var rows = []row{
	{"inorder/kafkago", true, kgmember.Consume, ours},
	{"inorder/confluent", true, cfmember.Consume, ours},
	{"inorder/franz", true, frmember.Consume, ours},
	{"watermill-kafka", false, consumeWatermill, perPartition},
	{"goka", false, consumeGoka, perPartition},
	{"goka-defercommit", false, consumeGokaDeferred, func(c, _ int) string { return fmt.Sprintf("%d (workers)", c) }},
	{"sarama-pool", false, consumeSaramaPool, func(c, _ int) string { return fmt.Sprintf("%d (workers)", c) }},
}

func ours(c, _ int) string {
	if c == kafkago.DefaultConcurrency {
		return fmt.Sprintf("%d (WithConcurrency, the default)", c)
	}
	return fmt.Sprintf("%d (WithConcurrency)", c)
}

func perPartition(_, p int) string { return fmt.Sprintf("%d (one per partition)", p) }

// rowNames lists the rows' names, for flags and errors.
func rowNames() []string {
	var n []string
	for _, r := range rows {
		n = append(n, r.name)
	}
	return n
}

// saramaTimeouts sets s's group timeouts on cfg unless s.Defaults, and
// makes a new group start at the oldest offset (every row does).
func saramaTimeouts(cfg *sarama.Config, s churn.MemberSpec) {
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	if !s.Defaults {
		cfg.Consumer.Group.Session.Timeout = s.SessionTimeout
		cfg.Consumer.Group.Rebalance.Timeout = s.RebalanceTimeout
		cfg.Consumer.Group.Heartbeat.Interval = s.HeartbeatInterval
	}
}

// consumeWatermill is watermill-kafka's Subscriber as its docs show it:
// Subscribe returns a channel of messages, the application Acks each. The
// subscriber sends a partition's next message only after the previous one
// was acked (then marks it; sarama auto-commits the marks every second), so
// at most one message per partition is in flight however many goroutines
// read the channel; s.Concurrency goroutines read it here, so that every
// partition's message is handled at once (a single reader, as in the
// getting-started example, would be one in flight in all).
func consumeWatermill(ctx context.Context, s churn.MemberSpec, handle churn.Handle, log *slog.Logger) error {
	cfg := wkafka.DefaultSaramaSubscriberConfig()
	saramaTimeouts(cfg, s)
	sub, err := wkafka.NewSubscriber(wkafka.SubscriberConfig{
		Brokers:               s.Brokers,
		Unmarshaler:           wkafka.DefaultMarshaler{},
		OverwriteSaramaConfig: cfg,
		ConsumerGroup:         s.Group,
	}, watermill.NewSlogLogger(log))
	if err != nil {
		return err
	}
	msgs, err := sub.Subscribe(ctx, s.Topic)
	if err != nil {
		return fmt.Errorf("watermill subscribe: %w (close: %v)", err, sub.Close())
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range s.Concurrency {
		wg.Go(func() {
			for msg := range msgs {
				p, _ := wkafka.MessagePartitionFromCtx(msg.Context())
				o, _ := wkafka.MessagePartitionOffsetFromCtx(msg.Context())
				if err := handle(msg.Context(), p, o); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					msg.Nack()
					continue
				}
				msg.Ack()
			}
		})
	}
	<-ctx.Done()
	err = sub.Close()
	wg.Wait() // the channel is closed once the consumer stopped
	if err == nil {
		err = first
	}
	return err
}

// consumeGoka is a goka processor with one input stream and no group table,
// as goka's README defines a group: goka runs one partition processor per
// assigned partition, each calling the callback for one message at a time
// and marking it when the callback returns (sarama auto-commits the marks
// every second). The callback could hand a message on and commit it later
// (Context.DeferCommit); this row uses the plain callback of the README.
func consumeGoka(ctx context.Context, s churn.MemberSpec, handle churn.Handle, log *slog.Logger) error {
	cfg := goka.DefaultConfig()
	saramaTimeouts(cfg, s)
	goka.ReplaceGlobalConfig(cfg) // goka's builders read the global config
	var (
		mu    sync.Mutex
		first error
	)
	g := goka.DefineGroup(goka.Group(s.Group),
		goka.Input(goka.Stream(s.Topic), new(codec.Bytes), func(gctx goka.Context, _ any) {
			if err := handle(gctx.Context(), gctx.Partition(), gctx.Offset()); err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
			}
		}))
	p, err := goka.NewProcessor(s.Brokers, g, goka.WithLogger(slogPrinter{log}))
	if err != nil {
		return err
	}
	err = p.Run(ctx)
	mu.Lock()
	defer mu.Unlock()
	if err == nil {
		err = first
	}
	return err
}

// consumeGokaDeferred is goka with the setting that lifts its one-at-a-time
// bound: the callback calls Context.DeferCommit, hands the message to a
// pool of s.Concurrency workers and returns; the worker calls the commit
// function when the handler is done. Goka then marks offset+1 (sarama's
// MarkOffset, which keeps the highest mark): the marks arrive in the
// order the handlers finish.
func consumeGokaDeferred(ctx context.Context, s churn.MemberSpec, handle churn.Handle, log *slog.Logger) error {
	cfg := goka.DefaultConfig()
	saramaTimeouts(cfg, s)
	goka.ReplaceGlobalConfig(cfg)
	jobs := make(chan func())
	var wg sync.WaitGroup
	for range s.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				j()
			}
		})
	}
	g := goka.DefineGroup(goka.Group(s.Group),
		goka.Input(goka.Stream(s.Topic), new(codec.Bytes), func(gctx goka.Context, _ any) {
			// gctx is only for this call: read what the worker needs now.
			commit, p, o, mctx := gctx.DeferCommit(), gctx.Partition(), gctx.Offset(), gctx.Context()
			jobs <- func() { commit(handle(mctx, p, o)) }
		}))
	p, err := goka.NewProcessor(s.Brokers, g, goka.WithLogger(slogPrinter{log}))
	if err == nil {
		err = p.Run(ctx) // returns once the deferred commits are done (or after 60s)
	}
	close(jobs)
	wg.Wait()
	return err
}

// slogPrinter is goka's Logger over a slog.Logger.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Print(v ...any)                 { p.l.Info(fmt.Sprint(v...)) }
func (p slogPrinter) Println(v ...any)               { p.l.Info(fmt.Sprint(v...)) }
func (p slogPrinter) Printf(format string, v ...any) { p.l.Info(fmt.Sprintf(format, v...)) }

// consumeSaramaPool is the pattern many services hand-roll on sarama: a
// ConsumerGroup whose ConsumeClaim feeds every claimed message into one
// pool of s.Concurrency workers; each worker handles a message and marks it
// (MarkMessage) when done; sarama auto-commits the marks every second.
// Sarama keeps the highest mark per partition: a worker that finishes
// offset 10 before another finishes offset 9 has marked 9 done.
func consumeSaramaPool(ctx context.Context, s churn.MemberSpec, handle churn.Handle, log *slog.Logger) error {
	cfg := sarama.NewConfig()
	saramaTimeouts(cfg, s)
	group, err := sarama.NewConsumerGroup(s.Brokers, s.Group, cfg)
	if err != nil {
		return err
	}
	jobs := make(chan poolJob)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range s.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				if err := handle(ctx, j.msg.Partition, j.msg.Offset); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					continue
				}
				j.sess.MarkMessage(j.msg, "")
			}
		})
	}
	h := poolHandler{jobs: jobs}
	for ctx.Err() == nil {
		if err := group.Consume(ctx, []string{s.Topic}, h); err != nil {
			log.Warn("sarama consume", "err", err)
			if ctx.Err() == nil {
				mu.Lock()
				first = err
				mu.Unlock()
				break
			}
		}
	}
	close(jobs)
	wg.Wait()
	if err := group.Close(); err != nil && first == nil { // the workers are done: first is ours
		first = err
	}
	return first
}

type poolJob struct {
	sess sarama.ConsumerGroupSession
	msg  *sarama.ConsumerMessage
}

// poolHandler is the sarama.ConsumerGroupHandler of consumeSaramaPool.
type poolHandler struct{ jobs chan<- poolJob }

func (poolHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (poolHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h poolHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			select {
			case h.jobs <- poolJob{sess, m}:
			case <-sess.Context().Done():
				return nil
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}
