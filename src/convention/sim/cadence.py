"""The survey's observing calendar: which nights each strip was scanned, and in what conditions.

One calendar is drawn per simulation seed and shared by all objects: objects in the same
strip share their nights, seeing, moon and clouds, as they did on the sky.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from convention.sim.survey import SurveyDefinition

# A new moon (2005-09-03 18:45 UTC) and the synodic month, for bright time.
_NEW_MOON_MJD = 53616.78
_SYNODIC_DAYS = 29.530589


@dataclass(frozen=True)
class Calendar:
    """Visits of every strip. Arrays are indexed by visit; ``strip`` says whose visit it is.

    Attributes:
        mjd: (V,) MJD of the first exposure of the visit.
        strip: (V,) strip scanned.
        seeing_r: (V,) r-band PSF FWHM in arcsec.
        bright: (V,) bool, moon up (bright time).
        cloud_mag: (V,) extinction by cloud, mag.
    """

    mjd: np.ndarray
    strip: np.ndarray
    seeing_r: np.ndarray
    bright: np.ndarray
    cloud_mag: np.ndarray

    def visits_of(self, strip: int) -> np.ndarray:
        """Indices of the visits of one strip, in time order."""
        return np.flatnonzero(self.strip == strip)


def moon_age_days(mjd: np.ndarray) -> np.ndarray:
    """Days since the last new moon (0 .. 29.5)."""
    return np.mod(np.asarray(mjd) - _NEW_MOON_MJD, _SYNODIC_DAYS)


def draw_calendar(survey: SurveyDefinition, rng: np.random.Generator) -> Calendar:
    """Draw the weather and the strip schedule of every season.

    Clear nights follow a two-state Markov chain; each clear night scans the strip that
    waited longest. Stripe 82 transits near local midnight in the fall (~07 UT).
    """
    mjd, strip, seeing, cloud = [], [], [], []
    for first, last in survey.seasons():
        nights = np.arange(first, last + 1.0)
        clear = rng.random() < 0.6
        last_visit = np.full(survey.strips, -np.inf)
        for night in nights:
            p = survey.p_clear_after_clear if clear else survey.p_clear_after_cloudy
            clear = rng.random() < p
            if not clear:
                continue
            s = int(np.argmin(last_visit))
            last_visit[s] = night
            mjd.append(night + 0.25 + 0.05 * rng.standard_normal())
            strip.append(s)
            seeing.append(
                survey.seeing_median_r * np.exp(survey.seeing_sigma_ln * rng.standard_normal())
            )
            cloudy = rng.random() < survey.cloud_fraction
            cloud.append(rng.exponential(survey.cloud_extinction_mean) if cloudy else 0.0)
    mjd_arr = np.array(mjd)
    age = moon_age_days(mjd_arr)
    # Bright time: the fraction of the lunation nearest full moon given by the survey.
    bright = np.abs(age - _SYNODIC_DAYS / 2) < survey.bright_time_fraction * _SYNODIC_DAYS / 2
    return Calendar(mjd_arr, np.array(strip), np.array(seeing), bright, np.array(cloud))


def strip_of(dec: float, survey: SurveyDefinition) -> int:
    """The strip that covers a declination: Stripe 82's 2.5 deg are 12 interleaved scanlines."""
    scanline = int(np.floor((dec + 1.25) / (2.5 / 12)))
    return int(np.clip(scanline, 0, 11)) % survey.strips


def choose_visits(
    calendar: Calendar,
    strip: int,
    center_mjd: float,
    n_visits: int,
    survey: SurveyDefinition,
) -> np.ndarray:
    """Up to ``n_visits`` consecutive visits of a strip, in the season nearest ``center_mjd``,
    the window centred as close to ``center_mjd`` as the season allows."""
    visits = calendar.visits_of(strip)
    seasons = survey.seasons()
    mids = np.array([(a + b) / 2 for a, b in seasons])
    first, last = seasons[int(np.argmin(np.abs(mids - center_mjd)))]
    visits = visits[(calendar.mjd[visits] >= first) & (calendar.mjd[visits] <= last + 1)]
    n = min(n_visits, len(visits))
    if n == 0:
        return visits
    starts = np.arange(len(visits) - n + 1)
    centres = np.array([calendar.mjd[visits[s : s + n]].mean() for s in starts])
    best = starts[int(np.argmin(np.abs(centres - center_mjd)))]
    return visits[best : best + n]
