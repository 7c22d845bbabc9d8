-- The customers as the source holds them now, from the change log, kept incrementally:
-- a build merges only the changes committed since the last one (a deleted customer is
-- removed; a snapshot or truncate among them rebuilds from the log). Raw columns: the
-- rows held are merged with raw changes. stg_shop__customers cleans them.
{{ config(
    materialized='incremental',
    unique_key='customer_id',
    incremental_strategy='delete+insert',
    post_hook="delete from {{ this }} where _is_deleted",
) }}

{{ cdc_current(source('shop', 'customers'), 'customer_id', incremental=true) }}
