-- Where an imported persona came from ("Imported from a Character Card V2 (SillyTavern)"), for its card.
-- NULL: made on Humalike in this bot, as every persona saved before this column was.
ALTER TABLE personas ADD COLUMN origin TEXT;
