// Package cfmember is the churn member for the confluent adapter
// (github.com/inorder/inorder/adapters/confluent, cgo); see package churn.
package cfmember

import (
	"context"
	"log/slog"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// Consume is a churn.Consume: it runs a confluent.Consumer with
// s.Concurrency workers (and s's timeouts unless s.Defaults) until ctx
// ends, with librdkafka's default (eager) assignors or, for s.Protocol
// "cooperative", the cooperative-sticky assignor, or for "consumer" the
// KIP-848 protocol.
func Consume(ctx context.Context, s churn.MemberSpec, handle churn.Handle, log *slog.Logger) error {
	cons, err := confluent.NewConsumer(s.Brokers, s.Group, []string{s.Topic}, Options(s, log)...)
	if err != nil {
		return err
	}
	return cons.Run(ctx, func(ctx context.Context, m *kafka.Message) error {
		return handle(ctx, m.TopicPartition.Partition, int64(m.TopicPartition.Offset))
	})
}

// Options are the confluent options of the member s: its concurrency,
// ordering, timeouts (unless s.Defaults) and assignor, logging to log.
func Options(s churn.MemberSpec, log *slog.Logger) []confluent.Option {
	opts := []confluent.Option{confluent.WithConcurrency(s.Concurrency), confluent.WithLogger(log)}
	if s.ByKey {
		opts = append(opts, confluent.WithOrdering(confluent.ByKey))
	}
	if s.InstanceID != "" {
		opts = append(opts, confluent.WithInstanceID(s.InstanceID))
	}
	consumer := s.Protocol == "consumer" // KIP-848: the broker owns the session and the assignor
	if !s.Defaults {
		opts = append(opts, confluent.WithRebalanceTimeout(s.RebalanceTimeout), confluent.WithRevokeTimeout(s.RevokeTimeout))
		if !consumer {
			opts = append(opts, confluent.WithSessionTimeout(s.SessionTimeout), confluent.WithHeartbeatInterval(s.HeartbeatInterval))
		}
	}
	switch s.Protocol {
	case "consumer":
		opts = append(opts, confluent.WithGroupProtocol(confluent.ConsumerProtocol))
	case "cooperative":
		opts = append(opts, confluent.WithConfigMap(kafka.ConfigMap{"partition.assignment.strategy": "cooperative-sticky"}))
	}
	return opts
}
