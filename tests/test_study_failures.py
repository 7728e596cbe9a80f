"""A study whose trials fail around their training, on a real SQLite store: it ends, says why,
and leaves no trial RUNNING and no observer's run open (found by review, each one a hang or
trials left RUNNING before)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tuner.errors import ConfigError, TunerError
from tuner.study import DataSpec, StudySpec, run_study
from tuner.study._observer import StudyObserver
from tuner.study._runs import FAIL_STREAK
from tuner.train import Callback


class Runaway(BaseException):
    """Raised by a test observer past any sane number of trials: a loop that never ends fails the test."""


class Recorder(StudyObserver):
    """Records which trials it started and ended; ``fail_start(n)`` says whether starting trial n raises."""

    def __init__(self, fail_start: Any = lambda n: False, callbacks: Any = lambda n: [], on_start: Any = None) -> None:
        self.fail_start, self.callbacks, self.on_start = fail_start, callbacks, on_start
        self.started: list[int] = []
        self.ended: dict[int, str] = {}
        self.calls = 0

    def on_trial_start(self, study: Any, trial: Any) -> tuple[list[Callback], dict[str, Any]]:
        self.calls += 1
        if self.calls > 40:
            raise Runaway(f"{self.calls} trials asked")
        if self.on_start is not None:
            self.on_start(trial.number)
        if self.fail_start(trial.number):
            raise RuntimeError("tracking server unreachable")
        self.started.append(trial.number)
        return self.callbacks(trial.number), {}

    def on_trial_end(self, study: Any, trial: Any, state: str, value: Any, outcome: Any, reason: Any) -> dict:
        self.ended[trial.number] = state
        return {}


class Boom(Callback):
    def on_epoch_end(self, state: Any, logs: Any) -> None:
        raise TypeError("a bug in a callback")


def _run(tmp_path: Path, observers: list[StudyObserver], n_trials: int, batch: int | None) -> optuna.Study:
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = StudySpec(DataSpec(dataset="breast_cancer"), ["l2"], ["lbfgs"], n_trials=n_trials, train={"epochs": 5})
    try:
        run_study(spec, "s", url, observers=observers, batch_trials=batch, refit_best=False)
    finally:
        study = optuna.load_study(study_name="s", storage=url)
    return study


@pytest.mark.parametrize("batch", [None, 4])
def test_trials_that_fail_before_training_stop_the_study_after_the_streak(tmp_path: Path, batch: int | None) -> None:
    # Every trial's observer fails to start: the study asked new trials forever (hundreds a second).
    with pytest.raises(TunerError, match="Every trial of study 's' failed.*tracking server unreachable"):
        _run(tmp_path, [Recorder(fail_start=lambda n: True)], n_trials=10, batch=batch)
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert [t.state for t in study.trials] == [TrialState.FAIL] * FAIL_STREAK


def test_an_observer_that_started_a_trial_hears_how_it_ended_when_the_next_one_failed_to(tmp_path: Path) -> None:
    first, second = Recorder(), Recorder(fail_start=lambda n: n == 1)
    _run(tmp_path, [first, second], n_trials=3, batch=None)
    assert first.started == [0, 1, 2, 3]  # the failed trial does not count: a fourth is asked
    assert first.ended[1] == "FAIL" and set(first.ended) == {0, 1, 2, 3}
    assert {first.ended[n] for n in (0, 2, 3)} <= {"COMPLETE", "PRUNED"}


def test_a_bug_while_telling_one_trial_still_tells_the_rest_of_its_group(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="a bug in a callback"):
        _run(tmp_path, [Recorder(callbacks=lambda n: [Boom()] if n == 1 else [])], n_trials=4, batch=4)
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}")
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE], states
    assert all(t.value is not None and t.value > 0 for t in study.trials if t.state == TrialState.COMPLETE)


def test_a_signal_while_a_batch_is_asked_fails_the_trials_asked_so_far(tmp_path: Path) -> None:
    # SIGINT arrives while trial 1 of a batch of 4 is prepared: they were left RUNNING.
    rec = Recorder(on_start=lambda n: os.kill(os.getpid(), signal.SIGINT) if n == 1 else None)
    study = _run(tmp_path, [rec], n_trials=4, batch=4)
    states = {t.number: t.state for t in study.trials}
    assert states == {0: TrialState.FAIL, 1: TrialState.FAIL}, states
    assert all("SIGINT" in t.user_attrs["fail_reason"] for t in study.trials)
    assert rec.ended == {0: "FAIL", 1: "FAIL"}


def test_a_study_whose_creation_is_cut_short_is_not_left_without_its_spec(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C between creating the Optuna study and storing its spec left a study that every later
    use of the name refused, after waiting for the spec."""
    from tuner.errors import ConfigError
    from tuner.study import open_or_create_study

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = StudySpec(DataSpec(dataset="breast_cancer"), ["l2"], ["lbfgs"], n_trials=2)
    real = optuna.study.Study.set_user_attr

    def interrupted(self: Any, key: str, value: Any) -> None:
        if key == "spec":
            raise KeyboardInterrupt
        real(self, key, value)

    with monkeypatch.context() as m:
        m.setattr(optuna.study.Study, "set_user_attr", interrupted)
        with pytest.raises(KeyboardInterrupt):
            open_or_create_study(spec, "cut", url)
    assert "cut" not in [s.study_name for s in optuna.get_all_study_summaries(url)]
    study, stored, _ = open_or_create_study(spec, "cut", url)  # the name is free again
    assert study.user_attrs["spec"] == stored.to_json() and study.user_attrs["uid"]
    optuna.create_study(study_name="bare", storage=url)  # one that tuner did not create says what to do
    with pytest.raises(ConfigError, match=r"has no tuner spec.*tuner study delete"):
        open_or_create_study(spec, "bare", url)


class _CreatesTheStudyFirst(StudyObserver):
    """Another process storing the study with its own options while this one checks its own."""

    def __init__(self, spec: StudySpec, name: str, url: str) -> None:
        self.spec, self.name, self.url, self.done = spec, name, url, False

    def check(self) -> None:
        from tuner.study import open_or_create_study

        if not self.done:
            self.done = True
            open_or_create_study(self.spec, self.name, self.url)


def test_a_process_that_finds_the_study_created_meanwhile_runs_the_stored_one(tmp_path: Path) -> None:
    """The loser of a creation race trained on its own defaults (100 epochs in a study stored
    with 3) and wrote its default budget (50 trials) over the creator's (4)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    from tuner.data import load_data

    creator = StudySpec(DataSpec(dataset="breast_cancer"), ["l2"], ["sgd"], n_trials=4, train={"epochs": 3})
    creator.data.fingerprint = load_data(dataset="breast_cancer").fingerprint
    late = StudySpec(DataSpec(dataset="breast_cancer"), ["l2"], ["sgd"])  # defaults: 50 trials, 100 epochs
    run_study(late, "race", url, observers=[_CreatesTheStudyFirst(creator, "race", url)], changes={},
              refit_best=False, batch_trials=2)
    study = optuna.load_study(study_name="race", storage=url)
    stored = StudySpec.from_json(study.user_attrs["spec"])
    assert stored.n_trials == 4 and stored.train.get("epochs") == 3
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4
    assert all(t.user_attrs.get("epochs_run", 0) <= 3 and max(t.intermediate_values, default=0) <= 3 for t in finished)


class _LowersTheBudget(StudyObserver):
    """Another process resuming the study with --trials 3 after this one's second trial."""

    def __init__(self, url: str) -> None:
        self.url, self.ended = url, 0

    def on_trial_end(self, study: Any, trial: Any, state: str, value: Any, outcome: Any, reason: Any) -> dict[str, Any]:
        self.ended += 1
        if self.ended == 2:
            stored = optuna.load_study(study_name=study.name, storage=self.url)
            spec = StudySpec.from_json(stored.user_attrs["spec"])
            spec.n_trials = 3
            stored.set_user_attr("spec", spec.to_json())
        return {}


def test_a_running_process_follows_a_budget_changed_by_a_resume(tmp_path: Path) -> None:
    """Each process fixed its budget when it started: a resume with a lower --trials was stored,
    but a study already running went on to its own (40 trials against a stored 6)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = StudySpec(DataSpec(dataset="breast_cancer"), ["l2"], ["lbfgs"], n_trials=12)
    run_study(spec, "lowered", url, observers=[_LowersTheBudget(url)], refit_best=False, batch_trials=1)
    study = optuna.load_study(study_name="lowered", storage=url)
    assert StudySpec.from_json(study.user_attrs["spec"]).n_trials == 3
    assert len([t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) == 3


class _SlowCheck(StudyObserver):
    """Setup steps slower than the study's timeout (a tracking server far away, large data)."""

    def check(self) -> None:
        import time

        time.sleep(1.5)

    def on_study_start(self, study: Any) -> dict[str, Any]:
        import time

        time.sleep(1.5)
        return {}


def test_the_timeout_counts_from_the_first_trial_not_the_setup(tmp_path: Path) -> None:
    """A setup slower than --timeout ran no trial, exited 0, and left the timeout to every resume."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = StudySpec(DataSpec(dataset="breast_cancer"), ["l2"], ["lbfgs"], n_trials=3)
    result = run_study(spec, "slow", url, observers=[_SlowCheck()], refit_best=False, timeout=1.0, batch_trials=1)
    study = optuna.load_study(study_name="slow", storage=url)
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) >= 1, result


class _ResumesWithThreeTrials(StudyObserver):
    """Another process resuming the study with --trials 3 while this one reads its data."""

    def __init__(self, url: str) -> None:
        self.url = url

    def check(self) -> None:
        stored = optuna.load_study(study_name="joined", storage=self.url)
        spec = StudySpec.from_json(stored.user_attrs["spec"])
        spec.n_trials = 3
        stored.set_user_attr("spec", spec.to_json())


def test_a_joining_process_does_not_write_back_a_budget_read_before_another_resume(tmp_path: Path) -> None:
    """A worker joining without --trials wrote back the spec it had read before reading its data:
    a resume's lower budget in between was undone, for every process (12 trials, not 3)."""
    from tuner.study import open_or_create_study

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = StudySpec(DataSpec(dataset="breast_cancer"), ["l2"], ["lbfgs"], n_trials=12)
    open_or_create_study(spec, "joined", url)
    run_study(None, "joined", url, observers=[_ResumesWithThreeTrials(url)], refit_best=False, batch_trials=1)
    study = optuna.load_study(study_name="joined", storage=url)
    assert StudySpec.from_json(study.user_attrs["spec"]).n_trials == 3
    assert len([t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) == 3


def test_a_timeout_limits_the_run_that_gave_it_and_is_never_stored(tmp_path: Path) -> None:
    """A timeout given once was stored with the budget: every later resume and worker stopped
    before its first trial, exited 0 and said nothing."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = StudySpec(DataSpec(dataset="breast_cancer"), ["l2"], ["lbfgs"], n_trials=3)
    first = run_study(spec, "tmo", url, refit_best=False, timeout=1e-3, batch_trials=1)
    # no trial ran: no answer, which exit code 0 would claim
    assert first.no_result is not None and "the 'timeout' parameter (0.001 s) ran out" in first.no_result
    study = optuna.load_study(study_name="tmo", storage=url)
    assert StudySpec.from_json(study.user_attrs["spec"]).timeout is None
    run_study(None, "tmo", url, refit_best=False, batch_trials=1)
    study = optuna.load_study(study_name="tmo", storage=url)
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 3


def test_resuming_or_joining_at_a_mistyped_sqlite_path_creates_no_database(tmp_path: Path) -> None:
    """A resume left an empty database behind its error; a worker created one and waited on it."""
    from tuner.api import wait_for_study
    from tuner.errors import StorageError

    typo = tmp_path / "typo.db"
    with pytest.raises(StorageError, match=f"There is no study database at {typo}"):
        run_study(None, "s1", f"sqlite:///{typo}", refit_best=False)
    with pytest.raises(ConfigError, match=r"within 1 s \(there is no database file at .*typo.db: is the path right\?\)"):
        wait_for_study(f"sqlite:///{typo}", "s1", 1.0)
    assert list(tmp_path.iterdir()) == []


def test_withdrawing_a_duplicate_retry_never_fails_a_copy_another_worker_started(tmp_path: Path) -> None:
    """A process that lost the race for a lost trial withdrew its queued copy by reading its state
    (WAITING) and then failing it: a copy another worker started in between was failed while it
    trained. The withdrawal is now one conditional update."""
    from tuner.study._runs import _withdraw

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.create_study(study_name="w", storage=storage)
    template = optuna.trial.create_trial(state=TrialState.WAITING, params={}, distributions={})
    started = storage.create_new_trial(study._study_id, template_trial=template)
    queued = storage.create_new_trial(study._study_id, template_trial=template)
    assert storage.set_trial_state_values(started, state=TrialState.RUNNING)  # another worker took it

    class StaleReads:  # what this process read a moment before: both copies WAITING
        def __getattr__(self, name: str) -> Any:
            return getattr(storage, name)

        def get_trial(self, trial_id: int) -> Any:
            trial = storage.get_trial(trial_id)
            trial.state = TrialState.WAITING
            return trial

    _withdraw(StaleReads(), started)
    _withdraw(StaleReads(), queued)
    assert storage.get_trial(started).state == TrialState.RUNNING and "withdrawn" not in storage.get_trial(started).user_attrs
    withdrawn = storage.get_trial(queued)
    assert withdrawn.state == TrialState.FAIL and withdrawn.user_attrs["withdrawn"] is True


def test_the_prune_judge_sees_other_workers_completed_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The median pruner's list of completed trials was re-read only when this process told a
    trial: a worker judged its trials against its own completions and kept trials the study's
    median would have stopped (below the pruner's 5 startup trials, it pruned nothing)."""
    from tuner.study import _objective
    from tuner.study._objective import PruneJudge

    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="p", storage=url, pruner=optuna.pruners.MedianPruner(n_startup_trials=5))
    clock = [1000.0]
    monkeypatch.setattr(_objective.time, "monotonic", lambda: clock[0])
    judge = PruneJudge(study)
    running = study.ask()
    assert not judge.should_prune(running, {1: 0.9})  # no completed trial yet
    other = optuna.load_study(study_name="p", storage=url)  # another worker completes five good trials
    for _ in range(5):
        t = other.ask()
        t.report(0.1, 1)
        other.tell(t, 0.1)
    assert not judge.should_prune(running, {1: 0.9})  # within the refresh interval: the list read before
    clock[0] += PruneJudge.REFRESH_S + 0.1
    assert judge.should_prune(running, {1: 0.9})  # 0.9 is worse than the other worker's median 0.1


def test_the_prune_judge_holds_completed_trials_to_the_value_they_ended_with(tmp_path: Path) -> None:
    """An unpenalized fit's validation loss falls to 0.19 at epoch 9 and ends at 0.30; judged at
    epoch 9 against such trials, one at 0.21 and still falling was pruned (on SST-2 the best
    trial of its study). Completed trials now count with what they kept; worse than where they
    ended is still pruned, and a maximized metric is held the other way."""
    from tuner.study._objective import PruneJudge

    for direction, sign in (("minimize", 1.0), ("maximize", -1.0)):
        study = optuna.create_study(study_name=direction, storage=f"sqlite:///{tmp_path / 's.db'}",
                                    direction=direction, pruner=optuna.pruners.MedianPruner(n_startup_trials=5))
        for _ in range(5):
            t = study.ask()
            for step, value in ((1, 0.59), (9, 0.19), (26, 0.30)):
                t.report(sign * value, step)
            study.tell(t, sign * 0.30)
        judge, running = PruneJudge(study), study.ask()
        assert not judge.should_prune(running, {9: sign * 0.21})
        assert judge.should_prune(running, {9: sign * 0.35})
        assert study.trials[0].intermediate_values[9] == sign * 0.19  # the stored trials are left as they are


def test_the_prune_judge_judges_a_running_trial_on_the_value_it_would_keep(tmp_path: Path) -> None:
    """Optuna's median pruner judges a trial on its best value so far, but a trial keeps its final
    weights (unless ``monitor="val"``): an unpenalized RMSprop fit on SST-2 fell to a good value,
    then overfit to 0.46 over 100 epochs, never pruned. It is now judged on its last value; a trial
    that keeps its best epoch as before; cross-validation's fold scores fold by fold."""
    from tuner.study._objective import PruneJudge

    for direction, sign in (("minimize", 1.0), ("maximize", -1.0)):
        study = optuna.create_study(study_name=direction, storage=f"sqlite:///{tmp_path / 's.db'}",
                                    direction=direction, pruner=optuna.pruners.MedianPruner(n_startup_trials=5))
        for _ in range(5):
            t = study.ask()
            for step in range(1, 11):
                t.report(sign * 0.30, step)
            study.tell(t, sign * 0.30)
        running = study.ask()
        overfit = {1: sign * 0.35, 2: sign * 0.20, 3: sign * 0.28, 4: sign * 0.40}  # best 0.20, now 0.40
        assert PruneJudge(study).should_prune(running, overfit, over_epochs=True)
        assert not PruneJudge(study, keeps_last=False).should_prune(running, overfit, over_epochs=True)
        # fold scores: the last fold against the same fold of the complete trials, not the best one
        assert PruneJudge(study, by_fold=True).should_prune(running, overfit)
        assert not PruneJudge(study, by_fold=True).should_prune(running, dict(list(overfit.items())[:3]))
        recovering = {1: sign * 0.35, 2: sign * 0.40, 3: sign * 0.25}  # worse on its way, better now
        assert not PruneJudge(study).should_prune(running, recovering, over_epochs=True)


def test_trials_asked_for_a_batch_keep_their_heartbeat_while_the_batch_is_prepared(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's heartbeat threads start when it trains: preparing it (an MLflow run a trial, on a
    slow server) for longer than the grace period let other workers fail its first trials as lost."""
    monkeypatch.setenv("TUNER_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("TUNER_HEARTBEAT_GRACE", "2")
    import time

    from tuner.study import open_storage

    stale_seen: list[list[int]] = []

    def slow_start(number: int) -> None:  # what another worker's stale check sees, then a slow MLflow call
        storage = open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat=True)
        study_id = storage.get_study_id_from_name("s")
        stale_seen.append(storage._get_stale_trial_ids(study_id))  # Optuna's own test of a lost trial
        time.sleep(1.2)

    study = _run(tmp_path, [Recorder(on_start=slow_start)], n_trials=4, batch=4)
    assert len(stale_seen) == 4 and all(not ids for ids in stale_seen), stale_seen
    assert all(t.state == TrialState.COMPLETE for t in study.trials)


def test_a_trial_is_beaten_when_asked_then_once_an_interval_while_it_lasts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trial shorter than the heartbeat interval is beaten once, when asked (a thread a trial
    beat again at once: a second write a trial, 5 ms of a 0.4 s ``bc50`` trial); a trial that
    trains for several intervals is beaten each interval, never a grace period apart."""
    import time

    from optuna.storages import RDBStorage

    from tuner.study._trial_batches import TrialBatches

    monkeypatch.setenv("TUNER_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("TUNER_HEARTBEAT_GRACE", "2")
    beats: dict[int, list[float]] = {}
    record = RDBStorage.record_heartbeat

    def counted(self: RDBStorage, trial_id: int) -> None:
        beats.setdefault(trial_id, []).append(time.monotonic())
        record(self, trial_id)

    monkeypatch.setattr(RDBStorage, "record_heartbeat", counted)
    train = TrialBatches.train
    slow: list[int] = []

    def third_trial_slow(self: TrialBatches, group: Any) -> Any:
        if group[0].trial.number == 2:
            slow.append(group[0].trial._trial_id)
            time.sleep(3.5)  # a long trial: three and a half intervals
        return train(self, group)

    monkeypatch.setattr(TrialBatches, "train", third_trial_slow)
    study = _run(tmp_path, [], n_trials=5, batch=1)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    ids = [t._trial_id for t in study.trials]
    assert [len(beats[i]) for i in ids if i not in slow] == [1, 1, 1, 1], beats
    (long_id,) = slow
    gaps = [b - a for a, b in zip(beats[long_id], beats[long_id][1:])]
    assert len(beats[long_id]) >= 4 and max(gaps) < 1.6, beats[long_id]


@pytest.mark.timeout(120)
def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_failed_as_lost_and_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed between Optuna's ask() and the heartbeat recorded right after it left a
    RUNNING trial with no heartbeat at all. Optuna's check skips such trials, so it held a slot
    of the budget for good: a resume waited for it forever, and `study show` called it alive."""
    monkeypatch.setenv("TUNER_HEARTBEAT_INTERVAL", "1")
    monkeypatch.setenv("TUNER_HEARTBEAT_GRACE", "2")
    import time

    from tuner.study import study_record
    from tuner.study._runs import LOST

    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = StudySpec(DataSpec(dataset="breast_cancer"), ["l2"], ["lbfgs"], n_trials=2)
    run_study(spec, "s", url, refit_best=False, batch_trials=1)
    killed = optuna.load_study(study_name="s", storage=url).ask()  # no heartbeat storage: none recorded
    assert study_record(url, "s").counts["stale"] == 0  # just asked: within the grace period
    time.sleep(2.5)
    assert study_record(url, "s").counts["stale"] == 1
    run_study(None, "s", url, refit_best=False, batch_trials=1, n_trials=3, resume_only=True)
    study = optuna.load_study(study_name="s", storage=url)
    lost = study.trials[killed.number]
    assert lost.state == TrialState.FAIL and lost.user_attrs["fail_reason"].startswith(LOST)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3 and [t.user_attrs.get("retry_of") for t in complete][-1] == killed.number


def test_a_study_deleted_between_a_tells_read_and_its_update_says_so(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`study delete --force` landing inside Optuna's tell (after it read the trial, before its
    UPDATE) failed the commit with StaleDataError, raised as a StorageInternalError traceback
    instead of the one line a deletion gets. The race is made certain by deleting there."""
    from optuna.storages import RDBStorage

    from tuner.errors import StorageError

    url = f"sqlite:///{tmp_path / 's.db'}"
    original = RDBStorage.set_trial_state_values
    told: list[int] = []

    def delete_then_fail(self: Any, trial_id: int, state: Any, values: Any = None) -> bool:
        if state == TrialState.COMPLETE:
            told.append(trial_id)
            if len(told) == 2:
                optuna.delete_study(study_name="s", storage=url)
                raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.")
        return original(self, trial_id, state, values)

    monkeypatch.setattr(RDBStorage, "set_trial_state_values", delete_then_fail)
    spec = StudySpec(DataSpec(dataset="breast_cancer"), ["l2"], ["lbfgs"], n_trials=5, train={"epochs": 5})
    with pytest.raises(StorageError, match="Study 's' was deleted from .* while this process ran its trials"):
        run_study(spec, "s", url, refit_best=False, batch_trials=1)


def test_a_start_that_mlflow_refuses_stores_no_study_and_keeps_a_resumed_one(tmp_path: Path) -> None:
    """A deleted MLflow experiment refused the start, but the study was stored already: the
    corrected command then met 'created with different options' under the same name."""
    import mlflow

    import tuner
    from tuner.errors import TrackingError
    from tuner.study import delete_study

    storage, tracking = f"sqlite:///{tmp_path / 's.db'}", f"sqlite:///{tmp_path / 'mlflow.db'}"
    kw: dict[str, Any] = dict(dataset="iris", trials=1, storage=storage, penalty="l2", optimizer="lbfgs")
    tuner.tune(study_name="dl", tracking_uri=tracking, **kw)
    client = mlflow.MlflowClient(tracking)
    client.delete_experiment(client.get_experiment_by_name("dl").experiment_id)
    delete_study(storage, "dl")
    with pytest.raises(TrackingError, match="The MLflow experiment 'dl' is deleted"):
        tuner.tune(study_name="dl", tracking_uri=tracking, **kw)
    assert "dl" not in optuna.get_all_study_names(storage)
    assert tuner.tune(study_name="dl", metric="accuracy", **kw).n_complete == 1  # the corrected command
    with pytest.raises(TrackingError, match="The MLflow experiment 'dl' is deleted"):
        tuner.tune(study_name="dl", tracking_uri=tracking, metric="accuracy", **{**kw, "trials": 2})
    assert len(optuna.load_study(study_name="dl", storage=storage).trials) == 1  # a resumed study stays


def test_a_trial_writes_its_attributes_in_two_transactions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its worker, variant and observers' attributes when it starts, its outcome and group when it
    ends: one transaction each (the worker and the group were a commit of their own, two of a
    ``bc50`` trial's ~22), and every attribute is still there."""
    import tuner.study._objective as objective_module
    import tuner.study._trial_batches as batches_module
    from tuner.study._runs import WORKER, set_trial_attrs

    writes: dict[int, int] = {}

    def counted(trial: Any, attrs: Any) -> None:
        if attrs:
            writes[trial.number] = writes.get(trial.number, 0) + 1
        set_trial_attrs(trial, attrs)

    monkeypatch.setattr(batches_module, "set_trial_attrs", counted)
    monkeypatch.setattr(objective_module, "set_trial_attrs", counted, raising=False)
    monkeypatch.setattr(optuna.trial.Trial, "set_user_attr", lambda *a: pytest.fail(f"a commit of its own: {a[1:]}"))
    class Marking(Recorder):
        def on_trial_start(self, study: Any, trial: Any) -> tuple[list[Callback], dict[str, Any]]:
            return super().on_trial_start(study, trial)[0], {"recorded": trial.number}

    study = _run(tmp_path, [Marking()], n_trials=4, batch=2)
    assert writes == {0: 2, 1: 2, 2: 2, 3: 2}, writes
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        assert t.user_attrs["worker"] == WORKER and t.user_attrs["penalty"] == "l2"
        assert t.user_attrs["group"]["trials"] == [2 * (t.number // 2), 2 * (t.number // 2) + 1]
        assert t.user_attrs["recorded"] == t.number  # an observer's attribute, with the start's
