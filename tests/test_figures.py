"""A run's figures and videos as a person gets them: the figures over the environment
steps, with the observed and the predicted return, redrawn every few seconds, at the
end and at a stop (a stopped run has them:
tests/test_logging.py), `dynaplan plot` on a run of an older dynaplan; the first video
after iteration 0, then every K-th; recording changes nothing the run computes."""

import tarfile
from pathlib import Path

import numpy as np
from resume_helpers import ctrl_c_in_iteration
from test_logging import FLAGS, TOY, config

from dynaplan.app.cli import main
from dynaplan.figures import STEPS_LABEL, RunFigures
from dynaplan.loop import train
from dynaplan.metrics import read_metrics

DATA = Path(__file__).parent / "data"


def drawn(figures, name):
    """{label: (x, y)} of every curve figure `name` shows, and its x labels."""
    fig, _ = figures.figures[name]
    curves = {line.get_label(): (np.asarray(line.get_xdata()), np.asarray(line.get_ydata()))
              for ax in fig.axes for line in ax.get_lines() if len(line.get_xdata())}
    return curves, {ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()}


def test_the_figures_are_over_env_steps_with_the_predicted_return(tmp_path):
    metrics = {"iteration": [0, 1, 2], "env_steps": [400, 600, 800],
               "train/return": [-900.0, -500.0, -200.0],
               "train/predicted_return": [-700.0, -450.0, -210.0],
               "eval/return": [float("nan"), -400.0, -150.0],
               "eval/return_min": [float("nan"), -450.0, -160.0],
               "eval/return_max": [float("nan"), -350.0, -140.0],
               "model/dynamics_train_loss": [0.5, 0.1, 0.05],
               "model/dynamics_valid_loss": [0.6, 0.2, 0.1],
               "model/open_loop_error_1": [0.3, 0.2, 0.1]}
    figures = RunFigures("title")
    paths = figures.draw(metrics, tmp_path / "plots", tmp_path)
    assert [p.name for p in paths] == ["return.png", "dynamics_loss.png", "reward_loss.png",
                                       "diagnostics.png"]
    assert all(p.stat().st_size > 5_000 for p in paths)
    curves, xlabels = drawn(figures, "return.png")
    assert xlabels == {STEPS_LABEL}
    observed = curves["training episodes (observed)"]
    predicted = curves["training episodes (planning reward's prediction)"]
    assert observed[0].tolist() == [400, 600, 800] and observed[1].tolist() == [-900, -500, -200]
    assert predicted[1].tolist() == [-700, -450, -210]
    assert curves["evaluation (mean)"][0].tolist() == [600, 800]  # its gap left out
    ax = figures.figures["return.png"][0].axes[0]
    assert ax.get_ylim()[0] <= -900 and ax.get_ylim()[1] >= -140  # the band fits in view
    curves, xlabels = drawn(figures, "diagnostics.png")
    assert xlabels == {STEPS_LABEL} and curves["1 step"][0].tolist() == [400, 600, 800]
    # the next iteration's redraw replaces the curves
    grown = {k: [*v, v[-1]] for k, v in metrics.items()}
    grown["env_steps"][-1] = 1000
    figures.draw(grown, tmp_path / "plots", tmp_path)
    assert drawn(figures, "return.png")[0]["training episodes (observed)"][0].tolist() == [
        400, 600, 800, 1000]


def labelled_y_ticks(ax):
    """The y tick labels that fall in view and are not blank, as the saved figure has them."""
    ax.figure.canvas.draw()
    low, high = ax.get_ylim()
    return [t.get_text() for t in ax.get_yticklabels()
            if t.get_text() and low <= t.get_position()[1] <= high]


def test_every_log_axis_has_labels_however_narrow_its_range(tmp_path):
    # HalfCheetah-v5's planning reward RMSE ran from 3e-8 to 6e-8: no power of ten in
    # view, and with only powers of ten labelled the axis had no label at all
    for rmse in ([3e-8, 4e-8, 6e-8], [0.05, 0.09, 0.2], [0.3, 0.5, 0.7],
                 [1e-4, 1e-2, 1.0]):
        metrics = {"iteration": [0, 1, 2], "env_steps": [400, 600, 800],
                   "model/reward_rmse": rmse}
        figures = RunFigures("title")
        figures.draw(metrics, tmp_path / "plots", tmp_path)
        ax = next(ax for ax in figures.figures["diagnostics.png"][0].axes
                  if ax.get_ylabel() == "Planning reward RMSE")
        assert ax.get_yscale() == "log"
        assert len(labelled_y_ticks(ax)) >= 2, (rmse, labelled_y_ticks(ax))


def test_metrics_without_env_steps_are_drawn_over_iterations(tmp_path):
    figures = RunFigures("title")
    figures.draw({"iteration": [0, 1], "train/return": [1.0, 2.0]}, tmp_path / "plots",
                 tmp_path)
    curves, xlabels = drawn(figures, "return.png")
    assert xlabels == {"Iteration"} and curves["training episodes (observed)"][0].tolist() == [0, 1]


def test_plot_redraws_a_run_of_an_older_dynaplan(tmp_path, capsys):
    with tarfile.open(DATA / "run_v1_pets.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    run = tmp_path / "oldens"
    assert "model/open_loop_error_1" not in read_metrics(run / "metrics.csv")
    assert main(["plot", str(run)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(run / "plots" / n) for n in
                       ("return.png", "dynamics_loss.png", "reward_loss.png")]
    assert all(Path(p).stat().st_size > 5_000 for p in printed)


def test_the_first_video_comes_after_iteration_0_and_recording_changes_nothing(tmp_path):
    train(config(iterations=4, video_every=2), tmp_path / "video", progress=False)
    videos = sorted(p.name for p in (tmp_path / "video" / "videos").iterdir())
    assert videos == ["iteration_0000.mp4", "iteration_0002.mp4", "iteration_0003.mp4"]
    train(config(iterations=4), tmp_path / "none", progress=False)
    assert not list((tmp_path / "none" / "videos").iterdir())

    def untimed(run):
        metrics = read_metrics(run / "metrics.csv")
        return {k: v for k, v in metrics.items() if not k.startswith("time/")}

    np.testing.assert_equal(untimed(tmp_path / "video"), untimed(tmp_path / "none"))
    assert (tmp_path / "video" / "episodes.csv").read_text() == \
        (tmp_path / "none" / "episodes.csv").read_text()


def redraws(monkeypatch):
    """The number of metrics rows each redraw of a run's figures showed."""
    shown = []
    real = RunFigures.draw

    def counting(self, metrics, *args, **kwargs):
        shown.append(len(metrics["iteration"]))
        return real(self, metrics, *args, **kwargs)

    monkeypatch.setattr(RunFigures, "draw", counting)
    return shown


def test_figures_redraw_every_few_seconds_and_at_the_end(tmp_path, monkeypatch):
    from dynaplan import loop

    shown = redraws(monkeypatch)
    monkeypatch.setattr(loop, "REDRAW_S", 1e6)  # a run shorter than REDRAW_S: at the end
    train(config(iterations=4), tmp_path / "a", progress=False)
    assert shown == [4]
    shown.clear()
    monkeypatch.setattr(loop, "REDRAW_S", 0.0)
    train(config(iterations=3), tmp_path / "b", progress=False)
    assert shown == [1, 2, 3]


def test_evaluation_time_does_not_bring_a_redraw_on(tmp_path, monkeypatch):
    """The redraw clock runs without evaluation: slow evaluations after every iteration
    add no redraws (a run's figures cost at most one redraw per REDRAW_S of training)."""
    import time

    from dynaplan import loop

    shown = redraws(monkeypatch)
    monkeypatch.setattr(loop, "REDRAW_S", 3.0)
    real = loop.evaluate

    def slow(*args, **kwargs):
        evaluations.append(1)
        time.sleep(1.0)
        return real(*args, **kwargs)

    evaluations: list[int] = []
    monkeypatch.setattr(loop, "evaluate", slow)
    start = time.perf_counter()
    train(config(iterations=4, eval_every=1, eval_episodes=1), tmp_path / "a", progress=False)
    assert len(evaluations) == 4
    if time.perf_counter() - start - 4.0 < 3.0:  # training itself took under REDRAW_S
        assert shown == [4]


def test_a_stopped_run_draws_every_iteration_it_logged(tmp_path, monkeypatch):
    from dynaplan import loop

    shown = redraws(monkeypatch)
    monkeypatch.setattr(loop, "REDRAW_S", 1e6)
    ctrl_c_in_iteration(monkeypatch, 2)
    assert main(["train", "--env", TOY, *FLAGS, "--iterations", "5", "--quiet",
                 "--out", str(tmp_path / "run")]) == 130
    assert shown == [2]  # at the stop, with iterations 0 and 1
