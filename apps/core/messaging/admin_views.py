"""The admin's page for dead letters: what each consumer gave up on, with
the error, and a button that replays them."""

from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from apps.core.messaging import dead_letters, topology


@require_http_methods(["GET", "POST"])
def dead_letters_view(request):
    if request.method == "POST":
        if not request.user.is_superuser:
            messages.error(request, "Only superusers may replay dead letters.")
        else:
            consumer = request.POST.get("consumer") or None
            event_id = request.POST.get("event_id")
            try:
                moved = dead_letters.dead_letters_replay(
                    consumer=consumer, event_ids={event_id} if event_id else None
                )
            except (ValueError, OSError) as exc:
                messages.error(request, f"Replay failed: {exc}")
            else:
                messages.success(request, f"Replayed {len(moved)} event(s).")
        return HttpResponseRedirect(reverse("admin-dead-letters"))
    error = None
    letters = []
    if settings.EVENTS_PUBLISHER == "inline":
        error = (
            "Events are delivered in-process here (EVENTS_PUBLISHER=inline): "
            "a consumer's failure is logged and there is no dead-letter queue."
        )
    else:
        try:
            letters = dead_letters.dead_letters_list()
        except OSError as exc:
            error = f"The broker cannot be reached: {exc}"
    context = {
        **admin.site.each_context(request),
        "title": "Dead letters",
        "letters": letters,
        "consumers": sorted(topology.consumer_specs()),
        "error": error,
        "can_replay": request.user.is_superuser,
    }
    return TemplateResponse(request, "admin/dead_letters.html", context)
