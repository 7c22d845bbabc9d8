-- dim_customers_history: every customer has exactly one current version, and versions of
-- one customer do not overlap.
select customer_id, count(*) filter (where is_current) as current_versions
from {{ ref('dim_customers_history') }}
group by customer_id
having count(*) filter (where is_current) <> 1
    or count(*) filter (where valid_to is not null and valid_to <= valid_from) > 0
