"""The browser user interface beyond login: machines, jobs, password and admin pages."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
