{#
  A key may appear in many batches (versions; staging keeps the latest) but only once in
  one batch: twice, and which version is the latest is a guess. Fails with the batch and
  the key.
#}
{% test unique_within_batch(model, columns) %}
select _load_id, {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
group by _load_id, {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
