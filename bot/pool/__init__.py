"""The 爱心资源库 in the database: snapshots for ranking, offers, volunteers, administration, import/export, batch."""
