"""The engine reads a search's evaluations from its rows: drop the JSON copy of its history
(``engine_state``, ``engine_version``, ``told``), keep its ask counter and each proposal's ask/reason."""

from django.db import migrations, models


def copy_ask_counters(apps, schema_editor):
    SearchInstance = apps.get_model("searches", "SearchInstance")
    Evaluation = apps.get_model("searches", "Evaluation")
    for search in SearchInstance.objects.exclude(engine_state=None).iterator():
        state = search.engine_state or {}
        SearchInstance.objects.filter(id=search.id).update(n_asks=int(state.get("n_asks", 0)))
        for record in list(state.get("history", [])) + list(state.get("pending", [])):
            Evaluation.objects.filter(search_id=search.id, encoding_index=record.get("index"),
                                      fidelity=record.get("fidelity"), ask=None).update(
                ask=record.get("ask"), reason=(record.get("reason") or "")[:16])


class Migration(migrations.Migration):

    dependencies = [
        ("searches", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="evaluation",
            name="ask",
            field=models.PositiveIntegerField(blank=True, help_text="the engine's ask that proposed it", null=True),
        ),
        migrations.AddField(
            model_name="evaluation",
            name="reason",
            field=models.CharField(blank=True, help_text="initial, acquisition, explore, ...", max_length=16),
        ),
        migrations.AddField(
            model_name="searchinstance",
            name="n_asks",
            field=models.PositiveIntegerField(default=0, help_text="proposal steps taken by the engine"),
        ),
        migrations.RunPython(copy_ask_counters, migrations.RunPython.noop),
        migrations.RemoveField(model_name="evaluation", name="told"),
        migrations.RemoveField(model_name="searchinstance", name="engine_state"),
        migrations.RemoveField(model_name="searchinstance", name="engine_version"),
    ]
