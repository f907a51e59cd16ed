"""The dashboard's login page, throttled per client address like ``POST /api/token/`` (NASWEB_TOKEN_RATE)."""

from __future__ import annotations

import math
from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from rest_framework.throttling import AnonRateThrottle


class LoginRateThrottle(AnonRateThrottle):
    """The token endpoint's rule, counted separately: each door allows NASWEB_TOKEN_RATE attempts."""

    scope = "login"

    def get_rate(self) -> str:
        return str(self.THROTTLE_RATES["anon"])


class ThrottledLoginView(auth_views.LoginView):
    """Django's login view; a client address past the rate gets the form back with HTTP 429 and Retry-After,
    whatever it sent (even the right password waits), so passwords cannot be guessed at speed."""

    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        throttle = LoginRateThrottle()
        if throttle.allow_request(request, self):
            return super().post(request, *args, **kwargs)
        wait = math.ceil(throttle.wait() or 1)
        # an unbound form: a bound one would check the password, which is what must wait
        form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
        form.cleaned_data = {}
        form.add_error(None, f"Too many login attempts from your address; try again in {wait} seconds.")
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(wait)
        return response
