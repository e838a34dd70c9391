package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type cfgView struct {
	Value    *string  `json:"value"`
	Source   string   `json:"source"`
	Synonyms []string `json:"synonyms"` // "SOURCE:name=value"
}

func configsOf(rc kadm.ResourceConfig) map[string]cfgView {
	out := map[string]cfgView{}
	for _, c := range rc.Configs {
		v := cfgView{Value: c.Value, Source: c.Source.String(), Synonyms: []string{}}
		for _, s := range c.Synonyms {
			val := "<null>"
			if s.Value != nil {
				val = *s.Value
			}
			v.Synonyms = append(v.Synonyms, fmt.Sprintf("%s:%s=%s", s.Source, s.Key, val))
		}
		out[c.Key] = v
	}
	return out
}

func describeTopicConfigs(ctx context.Context, adm *kadm.Client, topic string) (map[string]cfgView, string, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return nil, "", fmt.Errorf("DescribeTopicConfigs %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return nil, errName(err), nil
	}
	if rc.Err != nil {
		return nil, errName(rc.Err), nil
	}
	return configsOf(rc), "", nil
}

// settledConfigs describes the topic's configs until seen(configs) holds or 5 s pass, and
// returns the last description: a broker applies what the controller committed a moment
// later, so a describe right after an alter may not show it yet.
func settledConfigs(ctx context.Context, adm *kadm.Client, topic string, seen func(map[string]cfgView) bool) (map[string]cfgView, error) {
	var last map[string]cfgView
	err := waitFor(ctx, "configs of "+topic, 5*time.Second, func() (bool, error) {
		c, _, err := describeTopicConfigs(ctx, adm, topic)
		if err != nil {
			return false, err
		}
		if c != nil {
			last = c
		}
		return c != nil && seen(c), nil
	})
	if last == nil {
		return nil, err
	}
	return last, nil
}

func valueIs(name, want string) func(map[string]cfgView) bool {
	return func(c map[string]cfgView) bool { v, ok := c[name]; return ok && v.Value != nil && *v.Value == want }
}

func alterResults(rs kadm.AlterConfigsResponses, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, r := range rs {
		out = append(out, errName(r.Err))
	}
	return out, nil
}

func alterOp(op kadm.IncrementalOp, name, value string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: op, Name: name, Value: kadm.StringPtr(value)}
}

// alterFunc is one of kadm's topic config alters (incremental, validate only, State).
type alterFunc func(context.Context, []kadm.AlterConfig, ...string) (kadm.AlterConfigsResponses, error)

// configSteps runs a sequence of config alters and settled describes of one topic, each
// recording what it saw in r under its key; after the first error (kept in err) the rest do
// nothing.
type configSteps struct {
	ctx   context.Context
	adm   *kadm.Client
	topic string
	r     map[string]any
	err   error
}

// alter records the per-topic errors of one alter of topic t (call names it in an error).
func (s *configSteps) alter(key, call string, f alterFunc, t string, ops ...kadm.AlterConfig) {
	if s.err != nil {
		return
	}
	var err error
	if s.r[key], err = alterResults(f(s.ctx, ops, t)); err != nil {
		s.err = fmt.Errorf("%s: %w", call, err)
	}
}

// settle records the topic's configs once seen(configs) holds (see settledConfigs).
func (s *configSteps) settle(key string, seen func(map[string]cfgView) bool) {
	if s.err == nil {
		s.r[key], s.err = settledConfigs(s.ctx, s.adm, s.topic, seen)
	}
}

type partView struct {
	Leader   int32   `json:"leader"`
	Replicas []int32 `json:"replicas"`
	ISR      []int32 `json:"isr"`
	Error    string  `json:"error"`
}

func topicView(ctx context.Context, adm *kadm.Client, topic string) (map[string]any, error) {
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("ListTopics %s: %w", topic, err)
	}
	td, ok := tds[topic]
	if !ok {
		return nil, nil
	}
	parts := map[int32]partView{}
	for p, pd := range td.Partitions {
		parts[p] = partView{pd.Leader, pd.Replicas, pd.ISR, errName(pd.Err)}
	}
	return map[string]any{"id": hex.EncodeToString(td.ID[:]), "internal": td.IsInternal,
		"partitions": parts, "error": errName(td.Err)}, nil
}

// adminTopics: kadm topic, partition and config administration, with the errors Kafka gives.
func adminTopics(ctx context.Context, _ []string) (any, error) {
	adm, cl, err := adminClient("sluice-compat-admin")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	r := map[string]any{}
	topic := uniq("franz-admin")
	r["topic"] = topic

	// Brokers and cluster.
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return r, fmt.Errorf("BrokerMetadata: %w", err)
	}
	var brokers []map[string]any
	for _, b := range md.Brokers {
		brokers = append(brokers, map[string]any{"node_id": b.NodeID, "host": b.Host, "port": b.Port})
	}
	r["brokers"], r["cluster_id"], r["controller"] = brokers, md.Cluster, md.Controller
	apis, err := adm.ApiVersions(ctx)
	if err != nil {
		return r, fmt.Errorf("ApiVersions: %w", err)
	}
	served := map[string][2]int16{}
	for _, b := range apis {
		b.EachKeySorted(func(key, min, max int16) {
			served[fmt.Sprint(key)] = [2]int16{min, max}
		})
	}
	r["api_versions"] = served

	// Create (with configs), create again, validate only, bad requests.
	configs := map[string]*string{"retention.ms": kadm.StringPtr("3600000"), "max.message.bytes": kadm.StringPtr("500000")}
	created, err := adm.CreateTopics(ctx, 3, 1, configs, topic)
	if err != nil {
		return r, fmt.Errorf("CreateTopics: %w", err)
	}
	c := created[topic]
	createdCfg := map[string]any{}
	for k, v := range c.Configs {
		createdCfg[k] = map[string]any{"value": v.Value, "source": v.Source.String()}
	}
	r["create"] = map[string]any{"error": errName(c.Err), "partitions": c.NumPartitions, "rf": c.ReplicationFactor,
		"id": hex.EncodeToString(c.ID[:]), "configs": createdCfg}
	again, err := adm.CreateTopics(ctx, 3, 1, nil, topic)
	if err != nil {
		return r, fmt.Errorf("CreateTopics again: %w", err)
	}
	r["create_again"] = errName(again[topic].Err)

	validated := uniq("franz-validate-only")
	v, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, validated)
	if err != nil {
		return r, fmt.Errorf("ValidateCreateTopics: %w", err)
	}
	r["validate_only"] = map[string]any{"error": errName(v[validated].Err), "partitions": v[validated].NumPartitions}
	badRF := uniq("franz-bad-rf")
	bad, err := adm.CreateTopics(ctx, 1, 3, nil, badRF)
	if err != nil {
		return r, fmt.Errorf("CreateTopics rf 3: %w", err)
	}
	r["create_rf3"] = errName(bad[badRF].Err)
	badCfg := uniq("franz-bad-config")
	bad, err = adm.CreateTopics(ctx, 1, 1, map[string]*string{"retention.ms": kadm.StringPtr("soon")}, badCfg)
	if err != nil {
		return r, fmt.Errorf("CreateTopics bad config: %w", err)
	}
	r["create_bad_config"] = errName(bad[badCfg].Err)
	defaults := uniq("franz-defaults")
	def, err := adm.CreateTopics(ctx, -1, -1, nil, defaults)
	if err != nil {
		return r, fmt.Errorf("CreateTopics defaults: %w", err)
	}
	r["create_defaults"] = map[string]any{"error": errName(def[defaults].Err), "partitions": def[defaults].NumPartitions, "rf": def[defaults].ReplicationFactor}

	// The brokers learn of a created topic from the metadata log a moment after CreateTopics.
	if err := waitFor(ctx, topic+" in metadata", 10*time.Second, func() (bool, error) {
		tv, err := topicView(ctx, adm, topic)
		return tv != nil && len(tv["partitions"].(map[int32]partView)) == 3, err
	}); err != nil {
		return r, err
	}
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		return r, fmt.Errorf("ListTopics: %w", err)
	}
	r["listed_has_topic"], r["listed_has_validate_only"] = listed.Has(topic), listed.Has(validated)
	r["listed_has_bad_rf"], r["listed_has_bad_config"] = listed.Has(badRF), listed.Has(badCfg)
	r["listed_has_consumer_offsets"] = listed.Has("__consumer_offsets")
	// Kafka creates __consumer_offsets at the first FindCoordinator for a group.
	probe := uniq("franz-probe-group")
	if err := waitFor(ctx, "a group coordinator", 10*time.Second, func() (bool, error) {
		return adm.FindGroupCoordinators(ctx, probe)[probe].Err == nil, nil
	}); err != nil {
		return r, err
	}
	internal, err := adm.ListTopicsWithInternal(ctx, "__consumer_offsets")
	if err != nil {
		return r, fmt.Errorf("ListTopicsWithInternal: %w", err)
	}
	if co, ok := internal["__consumer_offsets"]; ok {
		r["consumer_offsets"] = map[string]any{"internal": co.IsInternal, "partitions": len(co.Partitions), "error": errName(co.Err)}
	}
	if r["metadata"], err = topicView(ctx, adm, topic); err != nil {
		return r, err
	}

	// Partitions: grow, validate-only grow, shrink.
	grow, err := adm.CreatePartitions(ctx, 2, topic)
	if err != nil {
		return r, fmt.Errorf("CreatePartitions: %w", err)
	}
	r["grow"] = errName(grow[topic].Err)
	vgrow, err := adm.ValidateCreatePartitions(ctx, 5, topic)
	if err != nil {
		return r, fmt.Errorf("ValidateCreatePartitions: %w", err)
	}
	r["validate_grow"] = errName(vgrow[topic].Err)
	shrink, err := adm.UpdatePartitions(ctx, 2, topic)
	if err != nil {
		return r, fmt.Errorf("UpdatePartitions: %w", err)
	}
	r["shrink"] = errName(shrink[topic].Err)
	if err := waitFor(ctx, "5 partitions in metadata", 10*time.Second, func() (bool, error) {
		tv, err := topicView(ctx, adm, topic)
		if err != nil || tv == nil {
			return false, err
		}
		r["metadata_after_grow"] = tv
		return len(tv["partitions"].(map[int32]partView)) == 5, nil
	}); err != nil {
		return r, err
	}

	// Configs: describe, incremental alter (set, delete, append, subtract, validate only,
	// errors), non-incremental alter, broker configs.
	if r["configs"], r["configs_error"], err = describeTopicConfigs(ctx, adm, topic); err != nil {
		return r, err
	}
	steps := configSteps{ctx: ctx, adm: adm, topic: topic, r: r}
	steps.settle("configs", valueIs("retention.ms", "3600000"))
	steps.alter("alter_incremental", "AlterTopicConfigs", adm.AlterTopicConfigs, topic,
		alterOp(kadm.SetConfig, "retention.ms", "7200000"),
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "max.message.bytes"},
		alterOp(kadm.AppendConfig, "cleanup.policy", "compact"),
		alterOp(kadm.SetConfig, "segment.ms", "86400000"))
	steps.alter("alter_append_non_list", "AlterTopicConfigs append to a non-list", adm.AlterTopicConfigs, topic,
		alterOp(kadm.AppendConfig, "retention.ms", "1000"))
	steps.settle("configs_after_incremental", valueIs("retention.ms", "7200000"))
	// SUBTRACT from a list set explicitly first (independent of what APPEND gave).
	steps.alter("alter_set_list", "AlterTopicConfigs set list", adm.AlterTopicConfigs, topic,
		alterOp(kadm.SetConfig, "cleanup.policy", "delete,compact"))
	steps.alter("alter_subtract", "AlterTopicConfigs subtract", adm.AlterTopicConfigs, topic,
		alterOp(kadm.SubtractConfig, "cleanup.policy", "compact"))
	steps.settle("configs_after_subtract", valueIs("cleanup.policy", "delete"))
	steps.alter("alter_validate_only", "ValidateAlterTopicConfigs", adm.ValidateAlterTopicConfigs, topic,
		alterOp(kadm.SetConfig, "retention.ms", "1000"))
	steps.alter("alter_bad_value", "AlterTopicConfigs bad value", adm.AlterTopicConfigs, topic,
		alterOp(kadm.SetConfig, "retention.ms", "soon"))
	steps.alter("alter_unknown_name", "AlterTopicConfigs unknown name", adm.AlterTopicConfigs, topic,
		alterOp(kadm.SetConfig, "no.such.config", "1"))
	steps.alter("alter_unknown_topic", "AlterTopicConfigs unknown topic", adm.AlterTopicConfigs, uniq("franz-no-such-topic"),
		alterOp(kadm.SetConfig, "retention.ms", "1000"))
	steps.settle("configs_after_failed_alters", func(map[string]cfgView) bool { return true })
	// Op is ignored by the non-incremental (State) alter.
	steps.alter("alter_state", "AlterTopicConfigsState", adm.AlterTopicConfigsState, topic,
		alterOp(kadm.SetConfig, "segment.bytes", "10485760"))
	steps.settle("configs_after_state", valueIs("segment.bytes", "10485760"))
	if steps.err != nil {
		return r, steps.err
	}
	_, r["configs_unknown_topic_error"], err = describeTopicConfigs(ctx, adm, uniq("franz-no-such-topic"))
	if err != nil {
		return r, err
	}
	// Broker configs: of broker 1, and (no broker named) the cluster-wide dynamic defaults.
	for key, ids := range map[string][]int32{"broker_configs": {1}, "cluster_default_broker_configs": nil} {
		bcs, err := adm.DescribeBrokerConfigs(ctx, ids...)
		if err != nil {
			return r, fmt.Errorf("DescribeBrokerConfigs %v: %w", ids, err)
		}
		var views []map[string]any
		for _, bc := range bcs {
			views = append(views, map[string]any{"name": bc.Name, "error": errName(bc.Err), "configs": configsOf(bc)})
		}
		r[key] = views
	}

	// Delete: gone from metadata, unknown the second time.
	del, err := adm.DeleteTopics(ctx, topic, defaults)
	if err != nil {
		return r, fmt.Errorf("DeleteTopics: %w", err)
	}
	r["delete"] = []string{errName(del[topic].Err), errName(del[defaults].Err)}
	if err := waitFor(ctx, "deleted topic gone from metadata", 10*time.Second, func() (bool, error) {
		l, err := adm.ListTopics(ctx)
		return err == nil && !l.Has(topic), err
	}); err != nil {
		return r, err
	}
	delAgain, err := adm.DeleteTopics(ctx, topic)
	if err != nil {
		return r, fmt.Errorf("DeleteTopics again: %w", err)
	}
	r["delete_again"] = errName(delAgain[topic].Err)
	return r, nil
}

type listedView struct {
	Offset      int64  `json:"offset"`
	Timestamp   int64  `json:"timestamp"`
	LeaderEpoch int32  `json:"leader_epoch"`
	Error       string `json:"error"`
}

func listedOf(l kadm.ListedOffsets, err error) (map[int32]listedView, error) {
	if err != nil {
		return nil, err
	}
	out := map[int32]listedView{}
	l.Each(func(o kadm.ListedOffset) {
		out[o.Partition] = listedView{o.Offset, o.Timestamp, o.LeaderEpoch, errName(o.Err)}
	})
	return out, nil
}

// adminOffsets: ListOffsets through kadm: start, end, committed (LSO), max timestamp and
// offsets after a time, on a partition with records and an empty one.
func adminOffsets(ctx context.Context, _ []string) (any, error) {
	adm, cl, topic, err := adminWithTopic(ctx, "franz-offsets", 2)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	// Ten records on partition 0, a second apart, except #6, an hour ahead of the rest.
	base := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	var rs []*kgo.Record
	for i := 0; i < 10; i++ {
		ts := base.Add(time.Duration(i) * time.Second)
		if i == 6 {
			ts = base.Add(time.Hour)
		}
		rs = append(rs, &kgo.Record{Topic: topic, Partition: 0, Timestamp: ts, Value: []byte(fmt.Sprint(i))})
	}
	if err := produceSync(ctx, rs...); err != nil {
		return nil, err
	}
	r := map[string]any{"topic": topic, "base_ms": base.UnixMilli()}
	for name, f := range map[string]func() (kadm.ListedOffsets, error){
		"start":         func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctx, topic) },
		"end":           func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctx, topic) },
		"committed":     func() (kadm.ListedOffsets, error) { return adm.ListCommittedOffsets(ctx, topic) },
		"max_timestamp": func() (kadm.ListedOffsets, error) { return adm.ListMaxTimestampOffsets(ctx, topic) },
		"after_base":    func() (kadm.ListedOffsets, error) { return adm.ListOffsetsAfterMilli(ctx, base.UnixMilli(), topic) },
		"after_3500": func() (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, base.UnixMilli()+3500, topic)
		},
		"after_20s": func() (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, base.UnixMilli()+20000, topic)
		},
		"after_2h": func() (kadm.ListedOffsets, error) {
			return adm.ListOffsetsAfterMilli(ctx, base.UnixMilli()+2*3600*1000, topic)
		},
		"unknown_topic": func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctx, uniq("franz-no-such-topic")) },
	} {
		if r[name], err = listedOf(f()); err != nil {
			return r, fmt.Errorf("list offsets %s: %w", name, err)
		}
	}
	return r, nil
}

type offsetView struct {
	At          int64  `json:"at"`
	LeaderEpoch int32  `json:"leader_epoch"`
	Metadata    string `json:"metadata"`
	Error       string `json:"error"`
}

func offsetsOf(os kadm.OffsetResponses, err error) (map[string]map[int32]offsetView, error) {
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]offsetView{}
	os.Each(func(o kadm.OffsetResponse) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]offsetView{}
		}
		out[o.Topic][o.Partition] = offsetView{o.At, o.LeaderEpoch, o.Metadata, errName(o.Err)}
	})
	return out, nil
}

func groupMember(id, group, topic string, opts ...kgo.Opt) (*kgo.Client, error) {
	return newClient(id, append([]kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(300 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}, opts...)...)
}

// pollN polls cl until it has n records (or 15 s pass).
func pollN(ctx context.Context, cl *kgo.Client, n int) ([]rec, error) {
	var out []rec
	deadline := time.Now().Add(15 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			return out, fmt.Errorf("polled %d of %d records within 15s", len(out), n)
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		for _, r := range fs.Records() {
			out = append(out, toRec(r))
		}
	}
	return out, nil
}

func listedGroupsOf(l kadm.ListedGroups, err error, group string) (any, error) {
	if err != nil {
		return nil, err
	}
	g, ok := l[group]
	if !ok {
		return nil, nil
	}
	return map[string]any{"state": g.State, "protocol_type": g.ProtocolType, "group_type": g.GroupType, "coordinator": g.Coordinator}, nil
}

// adminGroups: a live member's group listed and described; offsets fetched, committed by an
// admin (refused while the member is active), reset, deleted; lag; group deletion.
func adminGroups(ctx context.Context, _ []string) (any, error) {
	adm, cl, topic, err := adminWithTopic(ctx, "franz-groups", 2)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	group := uniq("franz-admin-group")
	if err := produceSync(ctx, perPartition(topic, 2, 10, "%d-%d")...); err != nil {
		return nil, err
	}
	r := map[string]any{"topic": topic, "group": group}

	m, err := groupMember("sluice-compat-group-admin-member", group, topic, kgo.Balancers(kgo.RangeBalancer()))
	if err != nil {
		return r, err
	}
	defer m.Close()
	got, err := pollN(ctx, m, 20)
	if err != nil {
		return r, err
	}
	if err := m.CommitUncommittedOffsets(ctx); err != nil {
		return r, fmt.Errorf("member commit: %w", err)
	}
	r["member_read"] = len(got)

	listGroup := func(types []string, states ...string) (any, error) {
		l, err := adm.ListGroupsByType(ctx, types, states...)
		return listedGroupsOf(l, err, group)
	}
	if r["list_all"], err = listGroup(nil); err != nil {
		return r, fmt.Errorf("ListGroups: %w", err)
	}
	if r["list_stable"], err = listGroup(nil, "Stable"); err != nil {
		return r, fmt.Errorf("ListGroups Stable: %w", err)
	}
	if r["list_empty_filter"], err = listGroup(nil, "Empty"); err != nil {
		return r, fmt.Errorf("ListGroups Empty: %w", err)
	}
	if r["list_classic"], err = listGroup([]string{"classic"}); err != nil {
		return r, fmt.Errorf("ListGroupsByType classic: %w", err)
	}
	if r["describe_active"], err = describeGroup(ctx, adm, group, topic); err != nil {
		return r, fmt.Errorf("DescribeGroups: %w", err)
	}
	coords := adm.FindGroupCoordinators(ctx, group)
	r["coordinator"] = map[string]any{"node": coords[group].NodeID, "error": errName(coords[group].Err)}
	if r["fetch_active"], err = offsetsOf(adm.FetchOffsets(ctx, group)); err != nil {
		return r, fmt.Errorf("FetchOffsets: %w", err)
	}
	lag, err := adm.Lag(ctx, group)
	if err != nil {
		return r, fmt.Errorf("Lag: %w", err)
	}
	r["lag_active"] = lagOf(lag[group], topic)

	reset := kadm.Offsets{}
	reset.AddOffset(topic, 0, 5, -1)
	reset.AddOffset(topic, 1, 0, -1)
	if r["commit_while_active"], err = offsetsOf(adm.CommitOffsets(ctx, group, reset)); err != nil {
		return r, fmt.Errorf("CommitOffsets while active: %w", err)
	}
	dg, err := adm.DeleteGroups(ctx, group)
	if err != nil {
		return r, fmt.Errorf("DeleteGroups while active: %w", err)
	}
	r["delete_while_active"] = errName(dg[group].Err)

	// The member leaves: the group is Empty and its offsets can be reset.
	m.Close()
	if err := waitFor(ctx, "group Empty", 10*time.Second, func() (bool, error) {
		d, err := describeGroup(ctx, adm, group, topic)
		r["describe_empty"] = d
		return err == nil && d.State == "Empty", err
	}); err != nil {
		return r, err
	}
	if r["list_empty"], err = listGroup(nil, "Empty"); err != nil {
		return r, fmt.Errorf("ListGroups Empty: %w", err)
	}
	withMeta := kadm.Offsets{}
	withMeta.Add(kadm.Offset{Topic: topic, Partition: 0, At: 5, LeaderEpoch: -1, Metadata: "reset by kadm"})
	withMeta.Add(kadm.Offset{Topic: topic, Partition: 1, At: 0, LeaderEpoch: -1})
	if r["commit_reset"], err = offsetsOf(adm.CommitOffsets(ctx, group, withMeta)); err != nil {
		return r, fmt.Errorf("CommitOffsets reset: %w", err)
	}
	if r["fetch_after_reset"], err = offsetsOf(adm.FetchOffsets(ctx, group)); err != nil {
		return r, fmt.Errorf("FetchOffsets: %w", err)
	}
	if lag, err = adm.Lag(ctx, group); err != nil {
		return r, fmt.Errorf("Lag: %w", err)
	}
	r["lag_after_reset"] = lagOf(lag[group], topic)
	delOffs, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {1: {}}})
	if err != nil {
		return r, fmt.Errorf("DeleteOffsets: %w", err)
	}
	r["delete_offsets"] = errName(delOffs[topic][1])
	if r["fetch_after_delete_offsets"], err = offsetsOf(adm.FetchOffsets(ctx, group)); err != nil {
		return r, fmt.Errorf("FetchOffsets: %w", err)
	}

	// A new member starts where the offsets now say: partition 0 at 5, partition 1 (no
	// commit) at its start.
	m2, err := groupMember("sluice-compat-group-admin-member2", group, topic)
	if err != nil {
		return r, err
	}
	got2, err := pollN(ctx, m2, 15)
	m2.Close()
	firsts := map[int32]int64{}
	for _, g := range got2 {
		if _, ok := firsts[g.Partition]; !ok {
			firsts[g.Partition] = g.Offset
		}
	}
	r["resumed_count"], r["resumed_first"] = len(got2), firsts
	if err != nil {
		return r, err
	}
	if err := waitFor(ctx, "group Empty again", 10*time.Second, func() (bool, error) {
		d, err := describeGroup(ctx, adm, group, topic)
		return err == nil && d.State == "Empty", err
	}); err != nil {
		return r, err
	}

	dg, err = adm.DeleteGroups(ctx, group)
	if err != nil {
		return r, fmt.Errorf("DeleteGroups: %w", err)
	}
	r["delete"] = errName(dg[group].Err)
	if r["describe_deleted"], err = describeGroup(ctx, adm, group, topic); err != nil {
		return r, fmt.Errorf("DescribeGroups deleted: %w", err)
	}
	if r["fetch_deleted"], err = offsetsOf(adm.FetchOffsets(ctx, group)); err != nil {
		r["fetch_deleted_error"] = errName(err)
	}
	if r["list_deleted"], err = listGroup(nil); err != nil {
		return r, fmt.Errorf("ListGroups: %w", err)
	}
	dg, err = adm.DeleteGroups(ctx, group)
	if err != nil {
		return r, fmt.Errorf("DeleteGroups again: %w", err)
	}
	r["delete_again"] = errName(dg[group].Err)
	unknown := uniq("franz-no-such-group")
	if r["describe_unknown"], err = describeGroup(ctx, adm, unknown, topic); err != nil {
		return r, fmt.Errorf("DescribeGroups unknown: %w", err)
	}
	return r, nil
}

type lagView struct {
	Commit int64  `json:"commit"`
	End    int64  `json:"end"`
	Lag    int64  `json:"lag"`
	Member string `json:"member"`
	Error  string `json:"error"`
}

func lagOf(l kadm.DescribedGroupLag, topic string) map[string]any {
	ps := map[int32]lagView{}
	for p, ml := range l.Lag[topic] {
		v := lagView{Commit: ml.Commit.At, End: ml.End.Offset, Lag: ml.Lag, Error: errName(ml.Err)}
		if ml.Member != nil {
			v.Member = ml.Member.ClientID
		}
		ps[p] = v
	}
	return map[string]any{"state": l.State, "describe_error": errName(l.DescribeErr), "fetch_error": errName(l.FetchErr), "partitions": ps, "total": l.Lag.Total()}
}
