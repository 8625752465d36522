// Package frmember is the churn member for the franz-go adapter
// (github.com/inorder/inorder/adapters/franz); see package churn.
package frmember

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/churn"
)

// Consume is a churn.Consume: it runs a franz.Consumer with s.Concurrency
// workers (and s's timeouts unless s.Defaults) until ctx ends, with the
// eager range balancer or, for s.Protocol "cooperative", kgo's
// cooperative-sticky one, or for "consumer" the KIP-848 protocol.
func Consume(ctx context.Context, s churn.MemberSpec, handle churn.Handle, log *slog.Logger) error {
	cons, err := franz.NewConsumer(s.Brokers, s.Group, []string{s.Topic}, Options(s, log)...)
	if err != nil {
		return err
	}
	return cons.Run(ctx, func(ctx context.Context, r *kgo.Record) error {
		return handle(ctx, r.Partition, r.Offset)
	})
}

// Options are the franz options of the member s: its concurrency, ordering,
// timeouts (unless s.Defaults) and balancer, logging to log.
func Options(s churn.MemberSpec, log *slog.Logger) []franz.Option {
	opts := []franz.Option{franz.WithConcurrency(s.Concurrency), franz.WithLogger(log)}
	if s.ByKey {
		opts = append(opts, franz.WithOrdering(franz.ByKey))
	}
	if s.InstanceID != "" {
		opts = append(opts, franz.WithInstanceID(s.InstanceID))
	}
	consumer := s.Protocol == "consumer" // KIP-848: the broker owns the session and the assignor
	if !s.Defaults {
		opts = append(opts, franz.WithRebalanceTimeout(s.RebalanceTimeout), franz.WithRevokeTimeout(s.RevokeTimeout))
		if !consumer {
			opts = append(opts, franz.WithSessionTimeout(s.SessionTimeout), franz.WithHeartbeatInterval(s.HeartbeatInterval))
		}
	}
	switch s.Protocol {
	case "consumer":
		opts = append(opts, franz.WithGroupProtocol(franz.ConsumerProtocol))
	case "cooperative":
		opts = append(opts, franz.WithClientOptions(kgo.Balancers(kgo.CooperativeStickyBalancer())))
	default:
		opts = append(opts, franz.WithClientOptions(kgo.Balancers(kgo.RangeBalancer())))
	}
	return opts
}
