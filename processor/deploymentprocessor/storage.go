// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor // import "github.com/deploylens/deploylens/processor/deploymentprocessor"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"
)

// stateKey is the storage key of the tracker snapshot, healthKey that of the
// health engine's state. The client is the processor's own (per component
// ID), so the keys need no prefix.
const (
	stateKey  = "tracker"
	healthKey = "health"
	// edgesKey is the engine of edges' state (dependency indicators).
	edgesKey = "health.dependencies"
)

// healthSaveInterval is the least time between two saves of the health
// state: it changes at every evaluation and weighs about 8 KiB per key, so
// it is saved less often than the tracker (and always at shutdown).
const healthSaveInterval = time.Minute

// stateStore saves the tracker to a storage extension: the whole snapshot as
// one value, written only when the state changed since the last save.
type stateStore struct {
	client storage.Client
	logger *zap.Logger
	// savedGeneration is the tracker generation last saved.
	savedGeneration uint64
	// health and edges remember the engines' last saves.
	health, edges engineSaves
}

// engineSaves is what a health engine's last save was: its generation,
// when, and which keys had frozen baselines, for which deployment.
type engineSaves struct {
	generation uint64
	saved      time.Time
	frozen     uint64
}

// saves is the bookkeeping of the engine stored under key.
func (s *stateStore) saves(key string) *engineSaves {
	if key == edgesKey {
		return &s.edges
	}
	return &s.health
}

func openStateStore(ctx context.Context, host component.Host, storageID, self component.ID, logger *zap.Logger) (*stateStore, error) {
	ext, ok := host.GetExtensions()[storageID]
	if !ok {
		return nil, fmt.Errorf("storage: extension %q not found", storageID)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("storage: extension %q is not a storage extension", storageID)
	}
	client, err := se.GetClient(ctx, component.KindProcessor, self, "")
	if err != nil {
		return nil, fmt.Errorf("storage: cannot get a client from %q: %w", storageID, err)
	}
	return &stateStore{client: client, logger: logger}, nil
}

// restore loads the saved state into tr. A missing, unreadable or
// incompatible snapshot starts empty: lost state must not stop the collector.
func (s *stateStore) restore(ctx context.Context, tr *tracker.Tracker, now time.Time) {
	data, err := s.client.Get(ctx, stateKey)
	if err != nil {
		s.logger.Warn("Cannot read saved deployment state; starting empty", zap.Error(err))
		return
	}
	if data == nil {
		return
	}
	var snap tracker.Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		s.logger.Warn("Cannot decode saved deployment state; starting empty", zap.Error(err))
		return
	}
	if snap.Format != tracker.SnapshotFormat {
		s.logger.Warn("Saved deployment state has an unknown format; starting empty",
			zap.Int("format", snap.Format), zap.Int("supported", tracker.SnapshotFormat))
		return
	}
	n := tr.Restore(snap, now)
	s.savedGeneration = tr.Generation()
	s.logger.Info("Restored deployment state", zap.Int("services", n), zap.Time("saved_at", snap.SavedAt))
}

// save writes the state if it changed since the last save, or always when
// final (at shutdown, so last-seen times are fresh).
func (s *stateStore) save(ctx context.Context, tr *tracker.Tracker, now time.Time, final bool) error {
	generation := tr.Generation()
	if generation == s.savedGeneration && !final {
		return nil
	}
	data, err := json.Marshal(tr.Snapshot(now))
	if err != nil {
		return err
	}
	if err := s.client.Set(ctx, stateKey, data); err != nil {
		return fmt.Errorf("saving deployment state: %w", err)
	}
	s.savedGeneration = generation
	return nil
}

// restoreHealth loads the saved health state into engine; like the tracker's,
// a missing or unusable state starts empty.
func (s *stateStore) restoreHealth(ctx context.Context, key string, engine *health.Engine, now time.Time) {
	data, err := s.client.Get(ctx, key)
	if err != nil {
		s.logger.Warn("Cannot read saved health state; starting empty", zap.Error(err))
		return
	}
	if data == nil {
		return
	}
	n, err := engine.RestoreState(data, now)
	if err != nil {
		s.logger.Warn("Cannot decode saved health state; starting empty", zap.Error(err))
		return
	}
	*s.saves(key) = engineSaves{generation: engine.Generation(), saved: now, frozen: frozenFingerprint(engine)}
	s.logger.Info("Restored health state", zap.String("key", key), zap.Int("keys", n))
}

// saveHealth writes the health state when it changed and healthSaveInterval
// has passed since the last save, or when baselines froze or thawed since the
// last save (a crash must not lose a deployment's frozen baseline for longer
// than flush_interval), or always when final.
func (s *stateStore) saveHealth(ctx context.Context, key string, engine *health.Engine, now time.Time, final bool) error {
	last := s.saves(key)
	generation := engine.Generation()
	frozen := frozenFingerprint(engine)
	if !final && (generation == last.generation || (now.Sub(last.saved) < healthSaveInterval && frozen == last.frozen)) {
		return nil
	}
	if err := s.client.Set(ctx, key, engine.MarshalState(now)); err != nil {
		return fmt.Errorf("saving health state %q: %w", key, err)
	}
	*last = engineSaves{generation: generation, saved: now, frozen: frozen}
	return nil
}

// frozenFingerprint sums a hash of (key, deployment id) over the keys whose
// baselines are frozen, in any order: it changes when one freezes, thaws or
// is judged for another deployment.
func frozenFingerprint(engine *health.Engine) uint64 {
	var sum uint64
	engine.Snapshots(func(snap *health.Snapshot) bool {
		if snap.Frozen {
			h := fnv.New64a()
			for _, part := range []string{snap.Key.Namespace, snap.Key.Service, snap.Key.Environment, snap.Key.Dependency, snap.DeploymentID} {
				_, _ = h.Write([]byte(part))
				_, _ = h.Write([]byte{0})
			}
			sum += h.Sum64()
		}
		return true
	})
	return sum
}

func (s *stateStore) close(ctx context.Context) error {
	return s.client.Close(ctx)
}

// Storage keys of the KPI book and the remembered alerts.
const (
	kpiKey    = "kpi"
	alertsKey = "alerts"
)

// restoreSignals loads the saved KPI book and alerts; like the tracker's,
// missing or unusable state starts empty.
func (s *stateStore) restoreSignals(ctx context.Context, sig *emitter) {
	for key, restore := range map[string]func([]byte) error{kpiKey: sig.book.Restore, alertsKey: sig.alerts.Restore} {
		data, err := s.client.Get(ctx, key)
		if err != nil {
			s.logger.Warn("Cannot read saved state; starting empty", zap.String("key", key), zap.Error(err))
			continue
		}
		if data == nil {
			continue
		}
		if err := restore(data); err != nil {
			s.logger.Warn("Cannot decode saved state; starting empty", zap.String("key", key), zap.Error(err))
		}
	}
}

// saveSignals writes the KPI book and the remembered alerts (both small).
func (s *stateStore) saveSignals(ctx context.Context, sig *emitter) error {
	var errs []error
	for key, snapshot := range map[string]func() ([]byte, error){kpiKey: sig.book.Snapshot, alertsKey: sig.alerts.Snapshot} {
		data, err := snapshot()
		if err == nil {
			err = s.client.Set(ctx, key, data)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("saving %s state: %w", key, err))
		}
	}
	return errors.Join(errs...)
}
