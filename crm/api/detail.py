"""The statement of a detail lookup (`…/{id}`), compiled by the ORM once instead of per request.

`Model.objects.for_member(membership)` filtered by pk compiles to one SELECT whose shape
depends only on the model and the member's scope and role, and whose parameters are the org id,
the user id and the pk. Compiling it costs more Python than the rest of a `GET /contacts/{id}`
spends on the database, so the first request of each shape keeps the ORM's SQL and later ones
run it with their own values. Only what the ORM produced is reused, and only when its columns
are exactly the model's fields and each parameter is recognisably one of those values.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections
from django.http import Http404


@dataclass(frozen=True)
class DetailStatement:
    sql: str
    recipe: tuple[str, ...]  # which value fills each placeholder, in order
    names: tuple[str, ...]  # attnames of the selected columns (the model's concrete fields)
    converters: dict  # column position -> (converters, expression), as the ORM applies them

    @classmethod
    def compile(cls, queryset, values: dict[str, object]) -> DetailStatement | None:
        """From `queryset` (already filtered by pk); None if it is not the plain shape above or if
        two of `values` are equal (the placeholders would be ambiguous)."""
        compiler = queryset.query.get_compiler(queryset.db)
        sql, params = compiler.as_sql()
        model = queryset.model
        names = tuple(f.attname for f in model._meta.concrete_fields)
        expressions = [expression for expression, _, _ in compiler.select]
        selected = tuple(getattr(getattr(e, "target", None), "attname", None) for e in expressions)
        if selected != names or compiler.annotation_col_map or compiler.klass_info.get("related_klass_infos"):
            return None
        by_value = {(type(v), v): name for name, v in values.items()}
        if len(by_value) != len(values):
            return None
        try:
            recipe = tuple(by_value[(type(p), p)] for p in params)
        except (KeyError, TypeError):
            return None
        return cls(sql, recipe, names, compiler.get_converters(expressions))

    def fetch(self, model, values: dict[str, object], using: str):
        """The one object, as the ORM would build it; Http404 when there is none."""
        connection = connections[using]
        with connection.prepared_cursor() as cursor:
            cursor.execute(self.sql, [values[name] for name in self.recipe])
            rows = cursor.fetchmany(2)
        if not rows:
            raise Http404(f"No {model._meta.object_name} matches the given query.")
        if len(rows) > 1:
            raise model.MultipleObjectsReturned(f"get() returned more than one {model._meta.object_name}")
        row = list(rows[0])
        for position, (converters, expression) in self.converters.items():
            value = row[position]
            for converter in converters:
                value = converter(value, expression, connection)
            row[position] = value
        return model.from_db(using, self.names, row)
