"""ITU-T G.107 (06/2015) E-model: transmission rating R and its MOS.

Every term is computed from the G.107 formulas and the Table 2 defaults rather than
from the usual shortcut constants (Ro = 93.2 ...), so that a change of delay also moves
the echo terms (Idte, Idle) and not only Idd. Formulas: ITU-T G.107 (06/2015) sections
7.1-7.7; Ie and Bpl per codec: ITU-T G.113 Appendix I; test vectors in tests/unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Codec:
    """Equipment impairment Ie and packet-loss robustness Bpl of one codec/PLC setting."""

    name: str
    ie: float
    bpl: float
    source: str
    research: bool = False  # True: not an ITU-T G.113 value; label it when reported


CODECS: MappingProxyType[str, Codec] = MappingProxyType(
    {
        c.name: c
        for c in (
            Codec("g711", 0.0, 4.3, "ITU-T G.113 Appendix I (G.711, no PLC)"),
            Codec("g711-plc", 0.0, 25.1, "ITU-T G.113 Appendix I (G.711 with PLC)"),
            Codec("g729a-vad", 11.0, 19.0, "ITU-T G.113 Appendix I (G.729A + VAD)"),
            Codec("g723.1-6.3k", 15.0, 16.1, "ITU-T G.113 Appendix I (G.723.1 6.3 kbit/s)"),
            Codec(
                "opus-nb-research",
                2.03,
                15.95,
                "research value, not ITU: Alahmadi et al. 2021, Opus NB CBR 11 kbit/s, random loss",
                research=True,
            ),
        )
    }
)


@dataclass(frozen=True, slots=True)
class EModelParams:
    """G.107 inputs. The defaults are G.107 Table 2 (a clean G.711 call, R = 93.2).

    Names follow G.107 symbols; delays are one-way except tr_ms (round trip).
    """

    slr: float = 8.0  # send loudness rating, dB
    rlr: float = 2.0  # receive loudness rating, dB
    stmr: float = 15.0  # sidetone masking rating, dB
    lstr: float = 18.0  # listener sidetone rating, dB
    ds: float = 3.0  # D-value of telephone, send side
    telr: float = 65.0  # talker echo loudness rating, dB
    wepl: float = 110.0  # weighted echo path loss, dB
    t_ms: float = 0.0  # mean one-way delay of the echo path
    tr_ms: float = 0.0  # round-trip delay in a 4-wire loop (listener echo)
    ta_ms: float = 0.0  # absolute (mouth-to-ear) delay
    qdu: float = 1.0  # number of quantization distortion units
    ie: float = 0.0  # equipment impairment factor
    bpl: float = 4.3  # packet-loss robustness factor
    ppl_pct: float = 0.0  # packet-loss probability, percent
    burst_r: float = 1.0  # burst ratio: 1 random loss, > 1 bursty
    nc: float = -70.0  # circuit noise referred to the 0 dBr point, dBm0p
    nfor: float = -64.0  # noise floor at the receive side, dBmp
    ps: float = 35.0  # room noise at the send side, dB(A)
    pr: float = 35.0  # room noise at the receive side, dB(A)
    a: float = 0.0  # advantage factor
    mt_ms: float = 100.0  # Idd: delay below which there is no impairment
    st: float = 1.0  # Idd: sensitivity

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"E-model parameter {name} must be finite")
        if not 0.0 <= self.ppl_pct <= 100.0:
            raise ValueError(f"ppl_pct must be within 0..100, got {self.ppl_pct}")
        if min(self.t_ms, self.tr_ms, self.ta_ms) < 0:
            raise ValueError("delays must not be negative")
        for name in ("burst_r", "bpl", "qdu", "mt_ms", "st"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


@dataclass(frozen=True, slots=True)
class Impairments:
    """The terms of R = Ro - Is - Id - Ie,eff + A, kept apart so that tests can check each."""

    ro: float
    is_: float
    idte: float
    idle: float
    idd: float
    ie_eff: float
    a: float

    @property
    def id(self) -> float:
        return self.idte + self.idle + self.idd

    @property
    def r(self) -> float:
        return self.ro - self.is_ - self.id - self.ie_eff + self.a


def _db_sum(*levels: float) -> float:
    """Power addition of levels in dB."""
    return 10.0 * math.log10(sum(10.0 ** (level / 10.0) for level in levels))


def _smooth(x: float, n: float) -> float:
    """(1 + x^n)^(1/n), the soft-threshold shape G.107 uses in Iolr, Ist and Idd."""
    return (1.0 + x**n) ** (1.0 / n)


def _noise(p: EModelParams) -> float:
    """No, the total noise level in dBm0p (G.107 7.2)."""
    olr = p.slr + p.rlr
    nos = p.ps - p.slr - p.ds - 100.0 + 0.004 * (p.ps - olr - p.ds - 14.0) ** 2
    pre = p.pr + 10.0 * math.log10(1.0 + 10.0 ** ((10.0 - p.lstr) / 10.0))
    nor = p.rlr - 121.0 + pre + 0.008 * (pre - 35.0) ** 2
    nfo = p.nfor + p.rlr
    return _db_sum(p.nc, nos, nor, nfo)


def _sidetone(p: EModelParams) -> float:
    """Ist, impairment by non-optimum sidetone; STMRo folds in echo at short T (G.107 7.3)."""
    stmro = -10.0 * math.log10(
        10.0 ** (-p.stmr / 10.0) + math.exp(-p.t_ms / 4.0) * 10.0 ** (-p.telr / 10.0)
    )
    return (
        12.0 * _smooth((stmro - 13.0) / 6.0, 8)
        - 28.0 * _smooth((stmro + 1.0) / 19.4, 35)
        - 13.0 * _smooth((stmro - 3.0) / 33.0, 13)
        + 29.0
    )


def _simultaneous(p: EModelParams, ro: float, no: float, ist: float) -> float:
    """Is = Iolr + Ist + Iq (G.107 7.3)."""
    olr = p.slr + p.rlr
    xolr = olr + 0.2 * (64.0 + no - p.rlr)
    iolr = 20.0 * (_smooth(xolr / 8.0, 8) - xolr / 8.0)
    q = 37.0 - 15.0 * math.log10(p.qdu)
    g = 1.07 + 0.258 * q + 0.0602 * q**2
    y = (ro - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0
    z = 46.0 / 30.0 - g / 40.0
    iq = 15.0 * math.log10(1.0 + 10.0**y + 10.0**z)
    return iolr + ist + iq


def _talker_echo(p: EModelParams, no: float, ist: float) -> float:
    """Idte (G.107 7.4): echo of the talker's own voice after T ms, attenuated by TELR."""
    terv = (
        p.telr
        - 40.0 * math.log10((1.0 + p.t_ms / 10.0) / (1.0 + p.t_ms / 150.0))
        + 6.0 * math.exp(-0.3 * p.t_ms**2)
    )
    if p.stmr < 9.0:  # low sidetone masks less: TERVs = TERV + Ist/2
        terv += ist / 2.0
    roe = -1.5 * (no - p.rlr)
    re = 80.0 + 2.5 * (terv - 14.0)
    idte = 0.0
    if p.t_ms >= 1.0:  # below 1 ms talker echo counts as sidetone (already in STMRo)
        diff = roe - re
        idte = (diff / 2.0 + math.sqrt(diff**2 / 4.0 + 100.0) - 1.0) * (1.0 - math.exp(-p.t_ms))
    if p.stmr > 20.0:  # very weak sidetone: Idtes = sqrt(Idte^2 + Ist^2)
        idte = math.sqrt(idte**2 + ist**2)
    return idte


def _listener_echo(p: EModelParams, ro: float) -> float:
    """Idle (G.107 7.4): echo heard by the listener after the round trip Tr, loss WEPL."""
    rle = 10.5 * (p.wepl + 7.0) * (p.tr_ms + 1.0) ** -0.25
    diff = ro - rle
    return diff / 2.0 + math.sqrt(diff**2 / 4.0 + 169.0)


def _delay(p: EModelParams) -> float:
    """Idd (G.107 7.4): impairment of a long mouth-to-ear delay Ta, with no echo."""
    if p.ta_ms <= p.mt_ms:
        return 0.0
    x = math.log2(p.ta_ms / p.mt_ms)
    n = 6.0 * p.st
    return 25.0 * (_smooth(x, n) - 3.0 * _smooth(x / 3.0, n) + 2.0)


def _ie_eff(p: EModelParams) -> float:
    """Ie,eff (G.107 7.5): codec impairment raised by packet loss, more so when bursty."""
    return p.ie + (95.0 - p.ie) * p.ppl_pct / (p.ppl_pct / p.burst_r + p.bpl)


def impairments(params: EModelParams) -> Impairments:
    """All terms of the E-model for these parameters."""
    no = _noise(params)
    ro = 15.0 - 1.5 * (params.slr + no)
    ist = _sidetone(params)
    return Impairments(
        ro=ro,
        is_=_simultaneous(params, ro, no, ist),
        idte=_talker_echo(params, no, ist),
        idle=_listener_echo(params, ro),
        idd=_delay(params),
        ie_eff=_ie_eff(params),
        a=params.a,
    )


def r_factor(params: EModelParams) -> float:
    """Transmission rating R = Ro - Is - Id - Ie,eff + A."""
    return impairments(params).r


def mos_from_r(r: float) -> float:
    """MOS (conversational quality, estimated) from R, G.107 Annex B.

    The Annex B cubic dips to 0.989 near R = 3.2; we floor it at 1, the bottom of the
    MOS scale, which keeps MOS non-decreasing in R. No test vector is affected.
    """
    if not math.isfinite(r):
        raise ValueError(f"R must be finite, got {r}")
    if r < 0.0:
        return 1.0
    if r > 100.0:
        return 4.5
    return max(1.0, 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6)


def get_codec(name: str) -> Codec:
    """The codec entry, or a ValueError that lists the valid names."""
    try:
        return CODECS[name]
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; valid: {', '.join(CODECS)}") from None


def score_call(
    loss_pct: float, burst_r: float, one_way_delay_ms: float, codec: str = "g711-plc"
) -> tuple[float, float]:
    """(R, MOS) of a call from measured loss, burstiness and one-way delay.

    The measured one-way delay is mouth-to-ear (Ta) and also the echo path delay (T);
    the listener-echo round trip is then Tr = 2T. All else keeps the G.107 defaults.
    """
    c = get_codec(codec)
    params = replace(
        EModelParams(),
        ie=c.ie,
        bpl=c.bpl,
        ppl_pct=loss_pct,
        burst_r=burst_r,
        t_ms=one_way_delay_ms,
        ta_ms=one_way_delay_ms,
        tr_ms=2.0 * one_way_delay_ms,
    )
    r = r_factor(params)
    return r, mos_from_r(r)


def burst_r_from_markov(p: float, q: float) -> float:
    """G.107 BurstR of a two-state (Gilbert) loss model: 1 / (p + q).

    p = P(lost | previous received), q = P(received | previous lost). With p = 0 nothing
    is ever lost, so loss cannot be bursty: BurstR = 1 (Ie,eff is then Ie anyway).
    """
    for name, value in (("p", p), ("q", q)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a probability within 0..1, got {value}")
    if p == 0.0:
        return 1.0
    return 1.0 / (p + q)
