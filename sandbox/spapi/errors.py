"""Typed errors the emulator turns into Amazon's error bodies.

Every SP-API error body has the same shape, ``{"errors": [{"code", "message", "details"}]}``:
Orders v0 (``…Response.errors`` is an array) and Reports/Listings (``ErrorList`` object)
validate alike.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiError(Exception):
    """An SP-API call rejected with ``status`` and one Amazon error element."""

    status: int
    code: str
    message: str
    details: str = ""

    def body(self) -> dict:
        return {"errors": [{"code": self.code, "message": self.message, "details": self.details}]}

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def invalid_input(message: str, details: str = "") -> ApiError:
    return ApiError(400, "InvalidInput", message, details)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NotFound", message)


UNAUTHORIZED = ApiError(403, "Unauthorized", "Access to requested resource is denied.")
QUOTA_EXCEEDED = ApiError(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
INTERNAL_FAILURE = ApiError(500, "InternalFailure", "We encountered an internal error. Please try again.")
SERVICE_UNAVAILABLE = ApiError(503, "ServiceUnavailable", "Service is temporarily unavailable. Please try again.")


@dataclass(frozen=True)
class LwaError(Exception):
    """A Login-with-Amazon token request rejected (OAuth2 error body, never an ``errors`` list)."""

    status: int
    error: str
    description: str

    def body(self) -> dict:
        return {"error": self.error, "error_description": self.description}


class SeedError(ValueError):
    """Seed data (orders, documents, listings) is not in the contract's shape; names the record."""
