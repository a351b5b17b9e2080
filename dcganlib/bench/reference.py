"""The reference the library step is timed against: the TensorFlow DCGAN tutorial's step
(tensorflow/docs, tutorials/generative/dcgan) on the same networks."""

from __future__ import annotations

from ..config import Config

class ReferenceGAN:
    """The TensorFlow-tutorial DCGAN step on dcganlib's architecture, float32.

    ``step(images)`` is the tutorial's ``train_step``: noise from ``tf.random.normal``, one ``G(z)``
    inside two GradientTapes, ``BinaryCrossentropy(from_logits=True)`` losses (generator: ones on the
    fake logits; discriminator: ones on real + zeros on fake), one ``apply_gradients`` per network with
    its own Adam. Returns ``(g_loss, d_loss)``.
    """

    def __init__(self, config: Config) -> None:
        import keras
        import tensorflow as tf

        from .. import models
        from ..hardware import dtype_policy

        with dtype_policy("float32"):
            self.generator = models.build_generator(config)
            self.discriminator = models.build_discriminator(config)
        self.g_optimizer = keras.optimizers.Adam(config.g_learning_rate, beta_1=config.beta_1, beta_2=config.beta_2)
        self.d_optimizer = keras.optimizers.Adam(config.d_learning_rate, beta_1=config.beta_1, beta_2=config.beta_2)
        cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
        generator, discriminator = self.generator, self.discriminator
        g_optimizer, d_optimizer = self.g_optimizer, self.d_optimizer
        latent_dim = config.latent_dim

        @tf.function
        def step(images):
            noise = tf.random.normal([tf.shape(images)[0], latent_dim])
            with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
                generated_images = generator(noise, training=True)
                real_output = discriminator(images, training=True)
                fake_output = discriminator(generated_images, training=True)
                gen_loss = cross_entropy(tf.ones_like(fake_output), fake_output)
                disc_loss = (cross_entropy(tf.ones_like(real_output), real_output)
                             + cross_entropy(tf.zeros_like(fake_output), fake_output))
            gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
            gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
            g_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
            d_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))
            return gen_loss, disc_loss

        self.step = step

    def run(self, images, steps: int) -> tuple[float, float]:
        """``steps`` tutorial steps on the same batch; returns the last ``(g_loss, d_loss)`` as floats."""
        losses = None
        for _ in range(steps):
            losses = self.step(images)
        return float(losses[0]), float(losses[1])  # .numpy() waits for the last step to finish
