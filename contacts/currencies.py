"""ISO 4217 currency codes, for an opportunity's `currency`.

Source: ISO 4217 "List One: Current currency & funds code list", published by its maintenance
agency (SIX Group, https://www.six-group.com/en/products-services/financial-information/data-standards.html),
as amended through 2025 (ZWG for Zimbabwe, XCG for Curaçao and Sint Maarten; HRK, SLL and ANG
withdrawn). Not kept: XTS (reserved for testing) and XXX ("no currency"), which no amount is in.
No maintained package carries the list among our dependencies; updating it is editing this set.
"""

from __future__ import annotations

_LIST_ONE = """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN
    BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
    MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
    SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH
    UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD
    XPF XPT XSU XUA YER ZAR ZMW ZWG
"""
CURRENCY_CODES = frozenset(_LIST_ONE.split())


def normalize_currency(text: str) -> str:
    """`" usd "` → `"USD"`; raises ValueError, saying why, for anything that is not an ISO 4217 code."""
    code = text.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValueError(f"{text[:20]!r} is not a currency code: expected three letters of ISO 4217, e.g. USD, EUR.")
    if code not in CURRENCY_CODES:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code (e.g. USD, EUR, GBP, JPY).")
    return code
