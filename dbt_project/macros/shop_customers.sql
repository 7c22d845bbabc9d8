{# The shop's customer attributes, cleaned: one definition for the customers as they are
   now (stg_shop__customers) and every version of them (base_shop__customers). #}
{% macro shop_customer_columns() -%}
        -- ids
        cast(customer_id as bigint) as customer_id,

        -- attributes
        lower(nullif(trim(email), '')) as email,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        upper(nullif(trim(country), '')) as country_code,

        -- timestamps
        timezone('UTC', cast(created_at as timestamp)) as created_at,
        timezone('UTC', cast(coalesce(updated_at, created_at) as timestamp)) as updated_at,
{%- endmacro %}
