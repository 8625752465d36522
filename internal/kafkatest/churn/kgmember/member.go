// Package kgmember is the churn member for the kafka-go adapter
// (github.com/inorder/inorder/adapters/kafkago); see package churn.
package kgmember

import (
	"context"
	"log/slog"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// Consume is a churn.Consume: it runs a kafkago.Consumer with
// s.Concurrency workers (and s's timeouts unless s.Defaults, s's instance
// id if any) until ctx ends. kafka-go rebalances eagerly; s.Protocol is ignored.
func Consume(ctx context.Context, s churn.MemberSpec, handle churn.Handle, log *slog.Logger) error {
	opts := []kafkago.Option{kafkago.WithConcurrency(s.Concurrency), kafkago.WithLogger(log)}
	if s.ByKey {
		opts = append(opts, kafkago.WithOrdering(kafkago.ByKey))
	}
	if s.InstanceID != "" {
		opts = append(opts, kafkago.WithInstanceID(s.InstanceID))
	}
	if !s.Defaults {
		opts = append(opts,
			kafkago.WithSessionTimeout(s.SessionTimeout),
			kafkago.WithRebalanceTimeout(s.RebalanceTimeout),
			kafkago.WithRevokeTimeout(s.RevokeTimeout),
			kafkago.WithHeartbeatInterval(s.HeartbeatInterval))
	}
	cons, err := kafkago.NewConsumer(s.Brokers, s.Group, []string{s.Topic}, opts...)
	if err != nil {
		return err
	}
	return cons.Run(ctx, func(ctx context.Context, m kafka.Message) error {
		return handle(ctx, int32(m.Partition), m.Offset)
	})
}
